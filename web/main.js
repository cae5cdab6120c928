// The page's glue: fetch MNIST, drive the wasm trainer, draw what it returns. Every computation
// is in the wasm module (src/web.rs): the same kernels and step as the native wgsl-gan.
//
// On load, before any training, it draws digits with the built-in class-conditional generator
// (generator.safetensors beside the page, the file `wgsl-gan sample` uses by default).
//
// Test mode (web/test.sh): ?test&steps=N&batch=B&seed=S&bench=M draws a grid of 7s with the
// built-in generator, trains N steps reading the losses of each, scores &score=K generated images
// as `train` scores an epoch, posts the checkpoint to /result, times M more steps, and logs the
// losses, the scores, checksums of the 7s and of the generator, and the rate as one line starting
// with WGSL_GAN_TEST.
import init, { WebGan, sample_checkpoint } from "./pkg/wgsl_gan.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const testMode = params.has("test");

function fail(message) {
  window.wgslGanState = "failed";
  $("error").textContent = message;
  console.error("WGSL_GAN_ERROR " + message);
}

async function fetchBytes(name) {
  const response = await fetch(name);
  if (!response.ok) {
    throw new Error(`cannot fetch ${name} (HTTP ${response.status}); serve the page with web/serve.sh, which puts the MNIST files beside it`);
  }
  return new Uint8Array(await response.arrayBuffer());
}

async function mnist() {
  const [images, labels] = await Promise.all([
    fetchBytes("mnist/train-images-idx3-ubyte.gz"),
    fetchBytes("mnist/train-labels-idx1-ubyte.gz"),
  ]);
  return { images, labels };
}

// images: Float32Array of n * 784 values in [-1, 1], drawn `cols` per row.
function drawGrid(canvas, images, cols = 8) {
  const n = images.length / 784, rows = Math.ceil(n / cols);
  canvas.width = cols * 28;
  canvas.height = rows * 28;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(cols * 28, rows * 28);
  for (let k = 0; k < n; k++) {
    const ox = (k % cols) * 28, oy = Math.floor(k / cols) * 28;
    for (let p = 0; p < 784; p++) {
      const v = Math.max(0, Math.min(255, Math.round((images[k * 784 + p] + 1) * 127.5)));
      const at = ((oy + Math.floor(p / 28)) * cols * 28 + ox + (p % 28)) * 4;
      img.data[at] = img.data[at + 1] = img.data[at + 2] = v;
      img.data[at + 3] = 255;
    }
  }
  ctx.putImageData(img, 0, 0);
}

function drawChart(canvas, history) {
  const ctx = canvas.getContext("2d");
  const { width: w, height: h } = canvas;
  ctx.clearRect(0, 0, w, h);
  if (history.length < 2) return;
  const max = Math.max(2, ...history.map((r) => Math.max(r.d, r.g)));
  const last = history[history.length - 1].step;
  const line = (key, color) => {
    ctx.strokeStyle = color;
    ctx.beginPath();
    history.forEach((r, i) => {
      const x = 30 + (w - 40) * (r.step / last), y = h - 20 - (h - 30) * (r[key] / max);
      i ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
    });
    ctx.stroke();
  };
  ctx.fillStyle = "#444";
  ctx.fillText(max.toFixed(1), 2, 14);
  ctx.fillText("0", 2, h - 20);
  ctx.fillText(`step ${last}`, w - 70, h - 5);
  line("d", "#1f77b4");
  line("g", "#ff7f0e");
}

function download(bytes, name) {
  const url = URL.createObjectURL(new Blob([bytes], { type: "application/octet-stream" }));
  const a = Object.assign(document.createElement("a"), { href: url, download: name });
  a.click();
  URL.revokeObjectURL(url);
}

// The browser names its adapter in GPUAdapterInfo; wgpu's AdapterInfo is mostly empty there.
async function adapterName(gan) {
  const info = (await navigator.gpu.requestAdapter())?.info ?? {};
  const name = [info.description, info.vendor, info.architecture, info.device].filter(Boolean).join(" / ");
  return `${name || "unnamed adapter"} (${gan.adapter().trim()})`;
}

// (count, sum of |x|, sum of x^2) in f64 of images: what the test compares with native `sample`.
function checksum(images) {
  let abs = 0, sq = 0;
  for (const x of images) { abs += Math.abs(x); sq += x * x; }
  return [images.length, abs, sq];
}

// "Draw a digit": the built-in generator's grid of the chosen digit, fresh noise, a latent walk.
function digitDrawer(generator) {
  let seed = 0;
  const draw = async (walk) => {
    const digit = Number($("drawdigit").value);
    try {
      const images = await sample_checkpoint(generator, seed, digit, walk);
      drawGrid($("digits"), images, walk ? 10 : 8);
      $("drawnote").textContent = walk
        ? `8 latent walks of ${digit}s (seed ${seed}): each row moves between two noise vectors`
        : `64 ${digit}s from noise seed ${seed} (as wgsl-gan sample --digit ${digit} --seed ${seed})`;
    } catch (e) {
      fail(`generator.safetensors: ${e}`);
    }
  };
  $("drawdigit").onchange = () => draw(false);
  $("fresh").onclick = () => { seed += 1; draw(false); };
  $("walk").onclick = () => draw(true);
  for (const id of ["drawdigit", "fresh", "walk"]) $(id).disabled = false;
  return draw(false);
}

async function runTest(data, generator) {
  const sevens = checksum(await sample_checkpoint(generator, 0, 7, false));
  const steps = Number(params.get("steps") ?? 20);
  const gan = await WebGan.create("mlp", false, Number(params.get("batch") ?? 64), Number(params.get("seed") ?? 0), data.images, data.labels);
  const losses = [];
  for (let i = 0; i < steps; i++) losses.push(Array.from(await gan.train(1)));
  const generatorChecksum = Array.from(await gan.generator_checksum());
  gan.enable_scoring(await fetchBytes("mnist-classifier.safetensors"), Number(params.get("score") ?? 500));
  const [fid, coverage, classAccuracy, scored] = Array.from(await gan.score());
  const score = { fid, coverage, class_accuracy: classAccuracy, count: scored, seed: gan.score_seed() };
  drawGrid($("grid"), await gan.samples());
  const checkpoint = await gan.checkpoint();
  // Then the rate: &bench=N more steps in one call (one readback, as the page trains), after
  // the steps above compiled every pipeline.
  const bench = Number(params.get("bench") ?? 10);
  const start = performance.now();
  if (bench > 0) await gan.train(bench);
  const stepsPerSecond = bench / ((performance.now() - start) / 1000);
  const adapter = await adapterName(gan);
  const result = { adapter, steps, losses, checksum: generatorChecksum, sevens, score, steps_per_second: stepsPerSecond };
  const posted = await fetch("/result", { method: "POST", body: checkpoint });
  if (!posted.ok) throw new Error(`cannot post the checkpoint: HTTP ${posted.status}`);
  $("status").textContent = JSON.stringify(result, null, 1);
  console.log("WGSL_GAN_TEST " + JSON.stringify(result));
}

async function main() {
  if (!navigator.gpu) {
    fail("This browser has no WebGPU (navigator.gpu is missing). Use a browser with WebGPU " +
      "(Chrome or Edge 113+, Safari 26+, Firefox 141+ on Windows), or enable it: " +
      "chrome://flags/#enable-unsafe-webgpu (Linux: also --enable-features=Vulkan).");
    return;
  }
  await init();
  const generator = await fetchBytes("generator.safetensors");
  if (testMode) return runTest(await mnist(), generator);
  await digitDrawer(generator);
  $("status").textContent = "loading MNIST…";
  const data = await mnist();

  let gan = null, adapter = "", perEpoch = 1, step = 0, running = false, history = [];
  // The wasm object serves one call at a time (an async call holds it until it returns), so
  // every call goes through this queue: a download during training waits for the current chunk.
  let queue = Promise.resolve();
  const exclusive = (f) => (queue = queue.then(f, f));
  const status = (extra) => {
    $("status").textContent = `adapter: ${adapter}\n` +
      `step ${step} (epoch ${Math.floor(step / perEpoch)}, ${perEpoch} steps per epoch)` + (extra ?? "");
  };
  $("start").disabled = false;
  $("status").textContent = "MNIST loaded; press Start.";
  $("start").onclick = async () => {
    $("start").disabled = true;
    try {
      if (!gan) {
        $("status").textContent = "opening the WebGPU adapter and compiling the kernels…";
        gan = await WebGan.create($("model").value, $("conditional").checked, Number($("batch").value), Number($("seed").value), data.images, data.labels);
        adapter = await adapterName(gan);
        perEpoch = gan.steps_per_epoch();
        // Each epoch's end is scored as `train` scores it: FID, coverage (and class accuracy).
        gan.enable_scoring(await fetchBytes("mnist-classifier.safetensors"), 2000);
        for (const id of ["model", "conditional", "batch", "seed"]) $(id).disabled = true;
      }
      running = true;
      $("pause").disabled = false;
      $("download").disabled = false;
      const batch = Number($("batch").value);
      while (running) {
        // Chunks of 10 steps that stop at each epoch's end, where the run is scored.
        const t = performance.now(), chunk = Math.min(10, perEpoch - (step % perEpoch));
        const [d, g, dReal, dFake] = await exclusive(() => gan.train(chunk));
        const seconds = (performance.now() - t) / 1000;
        step += chunk;
        history.push({ step, d, g });
        if (params.has("autostart") && step >= Number(params.get("autostart") || 100)) running = false;
        drawChart($("chart"), history);
        drawGrid($("grid"), await exclusive(() => gan.samples()));
        if (step % perEpoch === 0) {
          $("scores").textContent += `epoch ${step / perEpoch}: scoring 2000 images…`;
          const [fid, coverage, accuracy] = Array.from(await exclusive(() => gan.score()));
          const classes = Number.isNaN(accuracy) ? "" : `  class accuracy ${(100 * accuracy).toFixed(1)}%`;
          $("scores").textContent = $("scores").textContent.replace(/scoring 2000 images…$/,
            `FID ${fid.toFixed(2)}  coverage ${coverage}/10${classes}\n`);
        }
        status(`\nD loss ${d.toFixed(4)}, G loss ${g.toFixed(4)}, D(x) ${dReal.toFixed(3)}, D(G(z)) ${dFake.toFixed(3)}\n` +
          `${(chunk / seconds).toFixed(1)} steps/s, ${(chunk * batch / seconds).toFixed(0)} images/s`);
      }
      window.wgslGanState = "paused";
    } catch (e) {
      fail(String(e));
      window.wgslGanState = "failed";
    }
    $("start").disabled = false;
  };
  $("pause").onclick = () => { running = false; $("pause").disabled = true; };
  // ?autostart=N (the README's screenshot): start at once, pause after N steps.
  if (params.has("autostart")) $("start").click();
  $("download").onclick = async () => {
    try {
      download(await exclusive(() => gan.checkpoint()), "checkpoint.safetensors");
    } catch (e) {
      fail(String(e));
    }
  };
  const sampleFile = async () => {
    const file = $("ckpt").files[0];
    if (!file) return;
    const digit = $("digit").value === "" ? undefined : Number($("digit").value);
    try {
      $("error").textContent = "";
      drawGrid($("ckgrid"), await sample_checkpoint(new Uint8Array(await file.arrayBuffer()), 0, digit, false));
    } catch (e) {
      fail(`${file.name}: ${e}`);
    }
  };
  $("ckpt").onchange = sampleFile;
  $("digit").onchange = sampleFile;
}

main().catch((e) => fail(String(e)));
