// The seed's JavaScript example (fal.ai's "AuraFlow Text to Image" API page) with the official @fal-ai/client,
// against our standalone server (`python -m pipeline serve`) over TLS. Run by tests/serve/test_js_client.py,
// which starts the server on tiny random weights and sets:
//   AURAFLOW_SERVE_URL   https://127.0.0.1:<port> (the server)
//   AURAFLOW_SERVE_KEY   the key the server accepts
//   NODE_EXTRA_CA_CERTS  the test's own certificate, so Node's fetch verifies the server as usual
//
// @fal-ai/client has no host setting: it always builds https://queue.fal.run/<app>/… (request.js buildUrl). The
// one change from a fal user's setup is a `requestMiddleware` (a documented `fal.config` option that sees every
// request's method, url and headers) moving that host to our server; the seed's call below is verbatim. It sends
// only the prompt, so the server's defaults apply (50 steps, 1024 px); the pytest side fits sizes beyond the tiny
// test weights' 256 px grid to 64 px on the server (the logs say so), the client is none the wiser.
import assert from "node:assert/strict";
import { before, test } from "node:test";

import { ApiError, fal } from "@fal-ai/client";

const SERVER_URL = process.env.AURAFLOW_SERVE_URL;
const KEY = process.env.AURAFLOW_SERVE_KEY;
const FAL_QUEUE = "https://queue.fal.run/";
const sent = []; // every URL the client requested, after the rewrite

async function toOurServer(request) {
  // Anything but the queue API (rest.fal.ai tokens or storage, fal.run) would leave the machine: fail instead.
  if (!request.url.startsWith(FAL_QUEUE)) {
    throw new Error(`unexpected request outside fal's queue API: ${request.method} ${request.url}`);
  }
  const url = `${SERVER_URL}/${request.url.slice(FAL_QUEUE.length)}`;
  sent.push(`${request.method} ${url}`);
  return { ...request, url };
}

// The seed's prompt (also written out in the call below, as the seed has it).
const PROMPT =
  "Close-up portrait of a majestic iguana with vibrant blue-green scales, piercing amber eyes, and orange spiky crest. Intricate textures and details visible on scaly skin. Wrapped in dark hood, giving regal appearance. Dramatic lighting against black background. Hyper-realistic, high-resolution image showcasing the reptile's expressive features and coloration.";
// Our extension fields, for the other tests' own requests (the tiny weights' grid stops at 256 px).
const TINY = { width: 64, height: 64 };
const DEFAULT_STEPS = 50; // the seed's num_inference_steps default

before(() => {
  assert.ok(SERVER_URL && KEY, "AURAFLOW_SERVE_URL/AURAFLOW_SERVE_KEY unset: run via tests/serve/test_js_client.py");
  assert.ok(SERVER_URL.startsWith("https://127.0.0.1:"), SERVER_URL);
  assert.notEqual(process.env.NODE_TLS_REJECT_UNAUTHORIZED, "0", "TLS verification must stay on");
  assert.ok(process.env.NODE_EXTRA_CA_CERTS, "NODE_EXTRA_CA_CERTS (the test certificate) unset");
  fal.config({ credentials: KEY, requestMiddleware: toOurServer });
});

async function waitFor(check, what, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test("fal.subscribe, the seed's example: queue updates, step logs, images from our server", async () => {
  // A request ahead of ours, so the seed's call is first seen waiting in the queue.
  const ahead = await fal.queue.submit("fal-ai/aura-flow", {
    input: { prompt: "ahead in the queue", num_inference_steps: 20, ...TINY },
  });
  const updates = [];
  const printed = [];
  const consoleLog = console.log;
  console.log = (...args) => printed.push(args[0]); // forEach(console.log) passes (message, index, array)
  let result;
  try {
    // --- the seed's example, verbatim but for the line recording each update for the checks below ---
    result = await fal.subscribe("fal-ai/aura-flow", {
      input: {
        prompt: "Close-up portrait of a majestic iguana with vibrant blue-green scales, piercing amber eyes, and orange spiky crest. Intricate textures and details visible on scaly skin. Wrapped in dark hood, giving regal appearance. Dramatic lighting against black background. Hyper-realistic, high-resolution image showcasing the reptile's expressive features and coloration."
      },
      logs: true,
      onQueueUpdate: (update) => {
        updates.push(update);
        if (update.status === "IN_PROGRESS") {
          update.logs.map((log) => log.message).forEach(console.log);
        }
      },
    });
    console.log(result.data);
    console.log(result.requestId);
    // --- end of the seed's example ---
  } finally {
    console.log = consoleLog;
  }

  const { data } = result;
  assert.ok(Number.isInteger(data.seed), String(data.seed)); // no seed sent: the server chose one and says which
  assert.equal(data.images.length, 1);
  const image = data.images[0];
  assert.ok(image.url.startsWith(`${SERVER_URL}/files/`), image.url);
  assert.equal(image.content_type, "image/png");
  assert.equal(image.width, 64);
  assert.equal(image.height, 64);
  assert.ok(data.prompt.startsWith(PROMPT), data.prompt); // the seed's prompt is detailed: kept as it is
  // the image is served, over the same verified TLS, without the key
  const png = await fetch(image.url);
  assert.equal(png.status, 200);
  assert.deepEqual([...new Uint8Array(await png.arrayBuffer()).slice(1, 4)], [0x50, 0x4e, 0x47]); // "PNG"

  const statuses = updates.map((u) => u.status);
  assert.equal(statuses[0], "IN_QUEUE", statuses.join(","));
  assert.ok(statuses.includes("IN_PROGRESS"), statuses.join(","));
  assert.equal(statuses.at(-1), "COMPLETED");
  const queued = updates.find((u) => u.status === "IN_QUEUE");
  assert.equal(queued.queue_position, 0);
  const completed = updates.at(-1);
  const messages = completed.logs.map((log) => log.message);
  const n = DEFAULT_STEPS;
  for (let i = 1; i <= n; i++) assert.ok(messages.includes(`step ${i}/${n}`), messages.join(" | "));
  assert.ok(messages.includes(`expanded prompt: ${data.prompt}`), messages.join(" | ")); // expand_prompt: true
  assert.ok(messages.some((m) => m.startsWith("generating 1 image(s), 50 steps") && m.endsWith(`seed ${data.seed}`)),
    messages.join(" | "));
  assert.deepEqual(Object.keys(completed.logs[0]).sort(), ["level", "message", "source", "timestamp"]);
  assert.ok(printed.some((line) => /^step \d+\/50$/.test(line)), `the example's callback printed: ${printed}`);
  assert.match(result.requestId, /^[0-9a-f-]{36}$/); // from the x-fal-request-id header of the result response
  assert.ok(printed.includes(data) && printed.includes(result.requestId), "the example printed data and requestId");

  // the request ahead ran first and completed too
  const aheadResult = await fal.queue.result("fal-ai/aura-flow", { requestId: ahead.request_id });
  assert.equal(aheadResult.data.images.length, 1);
  assert.ok(sent.length > 0 && sent.every((line) => line.includes(` ${SERVER_URL}/fal-ai/aura-flow`)), sent.join("\n"));
});

test("fal.subscribe: result.requestId is the id the request was queued under", async () => {
  let requestId;
  const result = await fal.subscribe("fal-ai/aura-flow", {
    input: { prompt: "id", num_inference_steps: 1, ...TINY },
    onEnqueue: (id) => { requestId = id; },
  });
  assert.match(requestId, /^[0-9a-f-]{36}$/);
  assert.equal(result.requestId, requestId);
});

test("fal.queue.submit + status (logs) + result, and the status stream", async () => {
  const submitted = await fal.queue.submit("fal-ai/aura-flow", {
    input: { prompt: "a red fox in the snow", num_inference_steps: 4, seed: 5, ...TINY },
  });
  assert.equal(submitted.status, "IN_QUEUE");
  const requestId = submitted.request_id;
  assert.match(requestId, /^[0-9a-f-]{36}$/);

  const done = await waitFor(async () => {
    const status = await fal.queue.status("fal-ai/aura-flow", { requestId, logs: true });
    assert.ok(["IN_QUEUE", "IN_PROGRESS", "COMPLETED"].includes(status.status), status.status);
    return status.status === "COMPLETED" ? status : null;
  }, "COMPLETED");
  assert.ok(done.logs.map((log) => log.message).includes("step 4/4"));
  assert.equal(typeof done.metrics.inference_time, "number");

  const result = await fal.queue.result("fal-ai/aura-flow", { requestId });
  assert.equal(result.data.seed, 5);
  assert.ok(result.data.images[0].url.startsWith(`${SERVER_URL}/files/`));

  // the streaming (server-sent events) status mode, on a fresh request
  const streamed = await fal.queue.submit("fal-ai/aura-flow", {
    input: { prompt: "streamed", num_inference_steps: 3, seed: 6, ...TINY },
  });
  const seen = [];
  const final = await fal.queue.subscribeToStatus("fal-ai/aura-flow", {
    requestId: streamed.request_id, logs: true, mode: "streaming", onQueueUpdate: (u) => seen.push(u.status),
  });
  assert.equal(final.status, "COMPLETED");
  assert.equal(seen.at(-1), "COMPLETED");
  assert.ok(final.logs.map((log) => log.message).includes("step 3/3"));
  const streamedResult = await fal.queue.result("fal-ai/aura-flow", { requestId: streamed.request_id });
  assert.equal(streamedResult.data.seed, 6);
});

test("fal.queue.cancel: a queued request never runs, a running one stops", async () => {
  const running = await fal.queue.submit("fal-ai/aura-flow", {
    input: { prompt: "long running", num_inference_steps: 60, ...TINY },
  });
  await waitFor(async () => {
    const status = await fal.queue.status("fal-ai/aura-flow", { requestId: running.request_id, logs: true });
    return status.status === "IN_PROGRESS" && status.logs.some((log) => log.message === "step 1/60");
  }, "the long request to start");
  const queued = await fal.queue.submit("fal-ai/aura-flow", {
    input: { prompt: "queued, then cancelled", num_inference_steps: 2, ...TINY },
  });
  const waiting = await fal.queue.status("fal-ai/aura-flow", { requestId: queued.request_id });
  assert.equal(waiting.status, "IN_QUEUE");
  assert.equal(waiting.queue_position, 0);

  await fal.queue.cancel("fal-ai/aura-flow", { requestId: queued.request_id });
  const after = await fal.queue.status("fal-ai/aura-flow", { requestId: queued.request_id, logs: true });
  assert.equal(after.status, "COMPLETED");
  await assert.rejects(fal.queue.result("fal-ai/aura-flow", { requestId: queued.request_id }), (error) => {
    assert.ok(error instanceof ApiError, String(error));
    assert.equal(error.status, 400);
    assert.match(JSON.stringify(error.body), /cancel/i);
    return true;
  });

  await fal.queue.cancel("fal-ai/aura-flow", { requestId: running.request_id });
  const stopped = await waitFor(async () => {
    const status = await fal.queue.status("fal-ai/aura-flow", { requestId: running.request_id, logs: true });
    return status.status === "COMPLETED" ? status : null;
  }, "the running request to stop", 10_000);
  assert.ok(!stopped.logs.some((log) => log.message === "step 60/60"), "stopped before its last step");
  await assert.rejects(fal.queue.result("fal-ai/aura-flow", { requestId: running.request_id }), ApiError);
});
