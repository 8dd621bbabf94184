// Unit tests for web/js/auraflow_logic.js (node --test; run by tests/web/test_js.py).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
    applyStatusEvent,
    decideKeySettingChange,
    finishStatus,
    formatElapsed,
    isLive,
    keyInputProblem,
    keyStatusLabel,
    liveElapsed,
    promptDisplayText,
    sameNodeId,
    statusLines,
    trimLogTail,
} from "../../web/js/auraflow_logic.js";

test("formatElapsed: seconds, minutes, hours; junk is 0 s", () => {
    assert.equal(formatElapsed(0), "0 s");
    assert.equal(formatElapsed(7.9), "7 s");
    assert.equal(formatElapsed(59.99), "59 s");
    assert.equal(formatElapsed(60), "1 min 00 s");
    assert.equal(formatElapsed(125), "2 min 05 s");
    assert.equal(formatElapsed(3600 + 120 + 5), "1 h 02 min");
    for (const junk of [-3, NaN, Infinity, undefined, "12"]) assert.equal(formatElapsed(junk), "0 s");
});

test("trimLogTail keeps the last non-empty lines, cut to length", () => {
    const lines = ["a", "", "  b  ", 42, "c\n d", "x".repeat(10)];
    assert.deepEqual(trimLogTail(lines, 2, 100), ["c d", "x".repeat(10)]);
    assert.deepEqual(trimLogTail(lines, 10, 5), ["a", "b", "c d", "xxxx…"]);
    assert.deepEqual(trimLogTail(null), []);
    assert.deepEqual(trimLogTail(["a"], 0), []);
});

test("status events: queued position, running logs, clock ticks between events", () => {
    let s = applyStatusEvent(null, { node: "4", phase: "queued", position: 3, elapsed_s: 2, logs: [] }, 1000);
    assert.deepEqual(statusLines(s, 1000), ["fal.ai · queued, position 3 · 2 s"]);
    assert.deepEqual(statusLines(s, 6500), ["fal.ai · queued, position 3 · 7 s"]);
    assert.ok(isLive(s));
    s = applyStatusEvent(s, { phase: "running", elapsed_s: 10, logs: ["step 1", "step 2"], request_id: "r1" }, 9000);
    assert.deepEqual(statusLines(s, 9000, { maxLogLines: 1 }), ["fal.ai · running · 10 s", "  step 2"]);
    assert.equal(s.requestId, "r1");
});

test("unknown phases and bad positions are shown safely", () => {
    const s = applyStatusEvent(null, { phase: "<b>", position: -1, elapsed_s: "x" }, 0);
    assert.equal(s.phase, "running");
    assert.equal(s.position, null);
    assert.equal(s.elapsedS, 0);
    assert.equal(applyStatusEvent(null, null, 0), null);
});

test("finishStatus freezes the clock and names the outcome", () => {
    const s = applyStatusEvent(null, { phase: "running", elapsed_s: 10 }, 0);
    const done = finishStatus(s, "done", 5000);
    assert.equal(liveElapsed(done, 999999), 15);
    assert.ok(!isLive(done));
    assert.deepEqual(statusLines(done, 999999), ["fal.ai · done in 15 s"]);
    assert.equal(finishStatus(done, "failed", 0), done, "a finished run stays as it ended");
    assert.deepEqual(statusLines(finishStatus(s, "cancelled", 2000), 0), ["fal.ai · cancelled after 12 s"]);
    const failed = applyStatusEvent(null, { phase: "failed", elapsed_s: 3, error: "boom" }, 0);
    assert.deepEqual(statusLines(finishStatus(failed, "done", 0), 0), ["fal.ai · failed after 3 s: boom"]);
});

test("a new run after a finished one starts fresh", () => {
    const old = finishStatus(applyStatusEvent(null, { phase: "running", elapsed_s: 9, logs: ["old"] }, 0), "done", 0);
    const s = applyStatusEvent(old, { phase: "submitting", elapsed_s: 0 }, 100);
    assert.ok(isLive(s));
    assert.deepEqual(s.logs, []);
});

test("sameNodeId matches plain and subgraph ids", () => {
    assert.ok(sameNodeId("5", 5));
    assert.ok(sameNodeId("12:5", 5));
    assert.ok(!sameNodeId("15", 5));
    assert.ok(!sameNodeId(null, 5));
});

test("keyStatusLabel says only whether and where a key is set", () => {
    assert.equal(keyStatusLabel({ set: true, source: "file" }), "set (file)");
    assert.equal(keyStatusLabel({ set: true, source: "env" }), "set (environment)");
    assert.equal(keyStatusLabel({ set: false, source: null }), "not set");
    assert.equal(keyStatusLabel({ set: false, source: "file", problem: "chmod" }), "set (file) but not usable");
    assert.equal(keyStatusLabel(null), "unknown (the server did not answer)");
    const label = keyStatusLabel({ set: true, source: "file", key: "SECRETKEY:abc" });
    assert.ok(!label.includes("SECRET"));
});

test("keyInputProblem mirrors the server's checks", () => {
    assert.equal(keyInputProblem(" id:secret \n"), null);
    assert.match(keyInputProblem(""), /empty/);
    assert.match(keyInputProblem("   "), /empty/);
    assert.match(keyInputProblem("id: secret"), /spaces/);
    assert.match(keyInputProblem("id:sé"), /non-ASCII/);
    assert.match(keyInputProblem("id:\u0001"), /control/);
    assert.match(keyInputProblem(undefined), /empty/);
    assert.match(keyInputProblem("k".repeat(2000)), /too long/);
});

test("decideKeySettingChange submits once and always clears a typed value", () => {
    assert.deepEqual(decideKeySettingChange(" id:secret "), { submit: "id:secret", clear: true });
    assert.deepEqual(decideKeySettingChange("bad key"), { submit: null, clear: true });
    assert.deepEqual(decideKeySettingChange(""), { submit: null, clear: false }, "our own clearing is a no-op");
    assert.deepEqual(decideKeySettingChange(undefined), { submit: null, clear: false });
    assert.deepEqual(decideKeySettingChange(null), { submit: null, clear: false });
    assert.deepEqual(decideKeySettingChange(42), { submit: null, clear: true });
});

test("promptDisplayText puts warnings after the prompt", () => {
    assert.equal(promptDisplayText("a cat"), "a cat");
    assert.equal(promptDisplayText("a cat", ["⚠ slow", "", 3]), "a cat\n\n⚠ slow");
    assert.equal(promptDisplayText(undefined), "");
});
