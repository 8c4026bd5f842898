// segedge.js: run a segedge web export in the browser with onnxruntime-web (WASM).
//
//   import { loadSegmenter, overlay } from "./segedge.js";
//   const segmenter = await loadSegmenter("./");           // the exported folder's URL
//   const result = await segmenter.segment(imageOrCanvasOrVideoFrame);
//   overlay(canvas, imageOrCanvasOrVideoFrame, result);   // class colours over the picture
//
// `result.mask` is a Uint8Array (Uint16Array past 256 classes) of result.width x result.height class
// indices, row by row, the size of the picture given. The folder holds model.onnx, card.json (the
// model card: classes, palette, colour order, mean/std/scale, size divisor, output kind) and ort/
// (the onnxruntime-web files the export was tested with).
//
// Preprocessing is segedge's Predictor's (runtimes/imaging/preprocess.py), step for step, so a mask here
// equals the one `Predictor("model.onnx").predict(picture)` gives: pixels in the card's colour
// order, x = (pixel * scale - mean) / std in float32, the picture mirrored (numpy's "reflect") at
// its bottom and right edges up to a size the model takes (a multiple of size_divisor; a U-Net in
// valid mode also on every side by its margin), the output upsampled bilinearly when the model
// returns 1/output_stride of its input, then cropped back to the picture. Static-shape models take
// pictures up to their input size (the Predictor tiles larger ones; this module does not).
//
// Threads: onnxruntime-web runs WASM with several threads only when the page is cross-origin
// isolated (served with COOP/COEP headers, as serve.py does); `segmenter.threads` says how many it
// asked for, `segmenter.isolated` whether the page is isolated.

const ORT_MODULE = "ort/ort.wasm.min.mjs";

/**
 * Load the model of an exported folder.
 * @param {string} base URL of the folder (default: this module's own folder).
 * @param {{threads?: number, model?: string}} options threads: WASM threads (default: every
 *   core when cross-origin isolated, else 1); model: file name inside the folder.
 */
export async function loadSegmenter(base = new URL(".", import.meta.url).href, options = {}) {
  const root = new URL(base, location.href);
  if (!root.pathname.endsWith("/")) root.pathname += "/";
  const ort = await import(new URL(ORT_MODULE, root).href);
  const isolated = globalThis.crossOriginIsolated === true;
  const threads = options.threads ?? (isolated ? Math.max(1, navigator.hardwareConcurrency || 1) : 1);
  ort.env.wasm.wasmPaths = new URL("ort/", root).href;
  ort.env.wasm.numThreads = threads;
  const card = await (await fetchOk(new URL("card.json", root))).json();
  const bytes = await (await fetchOk(new URL(options.model ?? "model.onnx", root))).arrayBuffer();
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
  return new Segmenter(ort, session, card, { threads: ort.env.wasm.numThreads, isolated });
}

export class Segmenter {
  constructor(ort, session, card, { threads, isolated }) {
    this.ort = ort;
    this.session = session;
    this.card = card;
    this.threads = threads;
    this.isolated = isolated;
    this.inputName = session.inputNames.includes(card.input_name) ? card.input_name : session.inputNames[0];
    this.outputName = session.outputNames.includes(card.output_name) ? card.output_name : session.outputNames[0];
  }

  /**
   * Segment a picture: an HTMLImageElement, HTMLCanvasElement, OffscreenCanvas, ImageBitmap,
   * HTMLVideoElement (its current frame), VideoFrame or ImageData.
   * @param {{scores?: boolean}} options scores: also return the model's scores at the picture's
   *   size (Float32Array, C x height x width), e.g. to compare with another runtime.
   * @returns {Promise<{mask, width, height, classes, scores?}>}
   */
  async segment(picture, options = {}) {
    const { data, width, height } = rgba(picture);
    const card = this.card;
    const margin = card.valid_margin;
    const inH = modelSide(height + 2 * margin, card, 0);
    const inW = modelSide(width + 2 * margin, card, 1);
    const input = normalise(data, width, height, inH, inW, margin, card);
    const dims = card.layout === "NHWC" ? [1, inH, inW, 3] : [1, 3, inH, inW];
    const feeds = { [this.inputName]: new this.ort.Tensor("float32", toLayout(input, inH, inW, card.layout), dims) };
    const outputs = await this.session.run(feeds);
    const output = outputs[this.outputName];
    try {
      if (card.output_kind === "labels") return labelsResult(output, width, height, card);
      const scores = atPicture(planes(output, card.layout), card, inH - 2 * margin, inW - 2 * margin, width, height);
      const mask = label(scores, card);
      return { mask, width, height, classes: card.classes, palette: card.palette, ...(options.scores ? { scores: scores.data } : {}) };
    } finally {
      for (const tensor of Object.values(outputs)) tensor.dispose?.();
    }
  }

  release() {
    return this.session.release();
  }
}

/**
 * Draw `picture` on `canvas` with the class colours of `result` (its card's palette) blended over
 * it, class 0 left clear, as `segedge predict --overlay` does. `alpha`: weight of the colour.
 */
export function overlay(canvas, picture, result, alpha = 0.5) {
  const { data, width, height } = rgba(picture);
  canvas.width = width;
  canvas.height = height;
  const out = new ImageData(width, height);
  for (let i = 0; i < width * height; i++) {
    const cls = result.mask[i];
    const colour = cls === 0 ? null : (result.palette[cls] ?? [0, 0, 0]);
    for (let c = 0; c < 3; c++) {
      const p = data[4 * i + c];
      out.data[4 * i + c] = colour ? Math.round((1 - alpha) * p + alpha * colour[c]) : p;
    }
    out.data[4 * i + 3] = 255;
  }
  canvas.getContext("2d").putImageData(out, 0, 0);
}

// -- preprocessing ------------------------------------------------------------------------------
async function fetchOk(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`segedge: cannot load ${url}: HTTP ${response.status}`);
  return response;
}

function rgba(picture) {
  if (typeof ImageData !== "undefined" && picture instanceof ImageData) return picture;
  const width = picture.videoWidth || picture.naturalWidth || picture.displayWidth || picture.width;
  const height = picture.videoHeight || picture.naturalHeight || picture.displayHeight || picture.height;
  if (!width || !height) throw new Error("segedge: the picture has no pixels yet (not loaded?)");
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(picture, 0, 0);
  return context.getImageData(0, 0, width, height);
}

function modelSide(minSide, card, axis) {
  // runtimes.imaging.preprocess.model_side: the smallest side >= minSide that the model accepts.
  if (!card.dynamic) {
    const side = card.input_size[axis];
    if (minSide > side) {
      throw new Error(`segedge: this model takes ${card.input_size.join("x")} pictures at most; resize the picture`);
    }
    return side;
  }
  const d = card.size_divisor;
  const margin = card.valid_margin;
  const phase = margin > 0 ? card.input_size[axis] % d : 0;
  const low = Math.max(minSide, 2 * margin + 1, 1);
  return low + (((phase - low) % d) + d) % d;
}

function reflect(position, n) {
  // runtimes.imaging.preprocess.reflect_indices: mirrored without repeating the edge pixel.
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  const folded = ((position % period) + period) % period;
  return folded >= n ? period - folded : folded;
}

function normalise(data, width, height, inH, inW, margin, card) {
  // runtimes.imaging.preprocess.normalize: one float32 multiply and one subtract per channel.
  const order = card.color_order === "BGR" ? [2, 1, 0] : [0, 1, 2];
  const factor = order.map((_, c) => Math.fround(card.scale / card.std[c]));
  const bias = order.map((_, c) => Math.fround(card.mean[c] / card.std[c]));
  const out = new Float32Array(3 * inH * inW);
  const cols = Int32Array.from({ length: inW }, (_, x) => reflect(x - margin, width));
  for (let y = 0; y < inH; y++) {
    const row = reflect(y - margin, height) * width;
    for (let x = 0; x < inW; x++) {
      const pixel = 4 * (row + cols[x]);
      for (let c = 0; c < 3; c++) {
        out[(c * inH + y) * inW + x] = Math.fround(data[pixel + order[c]] * factor[c]) - bias[c];
      }
    }
  }
  return out;
}

function toLayout(chw, h, w, layout) {
  if (layout !== "NHWC") return chw;
  const out = new Float32Array(chw.length);
  for (let c = 0; c < 3; c++) for (let i = 0; i < h * w; i++) out[3 * i + c] = chw[c * h * w + i];
  return out;
}

// -- from the output to the mask ----------------------------------------------------------------
function planes(tensor, layout) {
  // {data: Float32Array C x h x w, channels, h, w} from N x C x h x w (or N x h x w x C).
  const data = Float32Array.from(tensor.data);  // float16 / other float outputs as float32
  const dims = tensor.dims;
  if (layout !== "NHWC") return { data, channels: dims[1], h: dims[2], w: dims[3] };
  const [, h, w, channels] = dims;
  const out = new Float32Array(data.length);
  for (let i = 0; i < h * w; i++) for (let c = 0; c < channels; c++) out[c * h * w + i] = data[i * channels + c];
  return { data: out, channels, h, w };
}

function atPicture(scores, card, fullH, fullW, width, height) {
  // runtimes.imaging.preprocess.at_input_resolution + from_model_output: upsample 1/output_stride outputs
  // bilinearly (half-pixel centres, as Pillow enlarges), then keep the picture's top-left corner.
  const source = scores.h === fullH && scores.w === fullW ? scores : bilinear(scores, fullH, fullW);
  const data = new Float32Array(source.channels * height * width);
  for (let c = 0; c < source.channels; c++) {
    for (let y = 0; y < height; y++) {
      const from = (c * source.h + y) * source.w;
      data.set(source.data.subarray(from, from + width), (c * height + y) * width);
    }
  }
  return { data, channels: source.channels, h: height, w: width };
}

function bilinear(scores, outH, outW) {
  const { data, channels, h, w } = scores;
  const out = new Float32Array(channels * outH * outW);
  const taps = (n, size) => Array.from({ length: size }, (_, i) => {
    const at = Math.min(Math.max((i + 0.5) * (n / size) - 0.5, 0), n - 1);
    const low = Math.floor(at);
    return [low, Math.min(low + 1, n - 1), at - low];
  });
  const ys = taps(h, outH);
  const xs = taps(w, outW);
  for (let c = 0; c < channels; c++) {
    const plane = c * h * w;
    for (let y = 0; y < outH; y++) {
      const [y0, y1, fy] = ys[y];
      for (let x = 0; x < outW; x++) {
        const [x0, x1, fx] = xs[x];
        const top = data[plane + y0 * w + x0] * (1 - fx) + data[plane + y0 * w + x1] * fx;
        const bottom = data[plane + y1 * w + x0] * (1 - fx) + data[plane + y1 * w + x1] * fx;
        out[(c * outH + y) * outW + x] = top * (1 - fy) + bottom * fy;
      }
    }
  }
  return { data: out, channels, h: outH, w: outW };
}

function label(scores, card) {
  // runtimes.imaging.postprocess.labels: the first largest class, or the foreground over the threshold.
  const { data, channels, h, w } = scores;
  const n = h * w;
  const mask = channels > 256 ? new Uint16Array(n) : new Uint8Array(n);
  if (card.output_kind === "sigmoid" || card.output_kind === "logit") {
    for (let i = 0; i < n; i++) {
      const p = card.output_kind === "sigmoid" ? data[i] : 1 / (1 + Math.exp(-data[i]));
      mask[i] = p > card.threshold ? 1 : 0;
    }
    return mask;
  }
  for (let i = 0; i < n; i++) {
    let best = 0;
    let top = data[i];
    for (let c = 1; c < channels; c++) {
      const v = data[c * n + i];
      if (v > top) { top = v; best = c; }
    }
    mask[i] = best;
  }
  return mask;
}

function labelsResult(tensor, width, height, card) {
  const dims = tensor.dims;
  const w = dims[dims.length - 1];
  const mask = card.classes.length > 256 ? new Uint16Array(width * height) : new Uint8Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) mask[y * width + x] = Number(tensor.data[y * w + x]);
  return { mask, width, height, classes: card.classes, palette: card.palette };
}
