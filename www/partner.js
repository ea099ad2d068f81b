// The partner's only script: signs the reader in at their first tap (with the origin's demo
// tokens; a real partner would hand over its own), and nothing else.
const show = document.getElementById("show");
const userId = (localStorage.liveshopUser ??= `reader-${crypto.randomUUID().slice(0, 8)}`);
let token = null;
show.userToken = async () => (token ??= await fetch("/demo/login", { method: "POST", body: JSON.stringify({ userId }) })
  .then((r) => r.json())
  .then((r) => r.token));
