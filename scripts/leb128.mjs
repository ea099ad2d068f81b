// LEB128, the variable-length integers of the wasm binary format, for the scripts that read and
// rewrite the wasm (short-imports, order-functions, zero-panic-locations).

/** The number at `buf[at]` (unsigned, or two's complement with `signed`) and where it ends. */
export function leb(buf, at, signed = false) {
  let value = 0, shift = 0, byte;
  do {
    byte = buf[at++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  if (signed && byte & 0x40) value -= 2 ** shift;
  return [value, at];
}

/** `n`, unsigned, as its bytes. */
export function encodeLeb(n) {
  const out = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return Buffer.from(out);
}
