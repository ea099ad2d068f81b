// What an app built with Vite writes: the package by its name, the wasm found by the glue
// (`new URL("liveshop_bg.wasm", import.meta.url)`, which Vite copies into the build).
import init, { LivePlayer } from "liveshop";

const video = document.querySelector("video");
await init();
const player = new LivePlayer(video, { src: "/live/show.m3u8" });
player.on("error", (e) => console.error(`liveshop error ${e.code}: ${e.message}`));
await player.start();
Object.assign(window, { player, video });
