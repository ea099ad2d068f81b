// What an app built with webpack 5 writes: the package by its name; webpack turns the glue's
// `new URL("liveshop_bg.wasm", import.meta.url)` into an emitted asset.
import init, { LivePlayer } from "liveshop";

const video = document.querySelector("video");
await init();
const player = new LivePlayer(video, { src: "/live/show.m3u8" });
player.on("error", (e) => console.error(`liveshop error ${e.code}: ${e.message}`));
await player.start();
Object.assign(window, { player, video });
