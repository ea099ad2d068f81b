// Promises made for the bindings, so that Rust makes none through a closure of its own (each
// `new Promise(executor)` from Rust brings the executor's shim and glue).

// A promise and the functions that settle it, as `Promise.withResolvers()` returns them (that
// one is not in every browser the package supports).
export function deferred() {
  const d = {};
  d.promise = new Promise((resolve, reject) => {
    d.resolve = resolve;
    d.reject = reject;
  });
  return d;
}

// A promise resolved after `ms`.
export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
