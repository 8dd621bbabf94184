// Pure logic for the ComfyUI-AuraFlow web extension: no ComfyUI imports, no DOM, so node's test runner can load it
// (tests/web/*.test.mjs). ComfyUI serves every .js under web/ as an extension module; this one registers nothing.
// Event names and payloads match nodes/_ui_events.py; the route matches nodes/web_routes.py.

export const FAL_STATUS_EVENT = "auraflow.fal_status";
export const PROMPT_EVENT = "auraflow.prompt";
export const KEY_ROUTE = "/auraflow/fal-key";
// the nodes that send FAL_STATUS_EVENT (nodes/remote.py)
export const FAL_NODES = ["AuraFlowFal", "AuraFlowFalResult"];

const PHASES = ["submitting", "queued", "running", "downloading", "failed"];

/** Seconds as "7 s", "2 min 05 s", "1 h 02 min"; anything not a finite non-negative number is "0 s". */
export function formatElapsed(seconds) {
    const s = Number.isFinite(seconds) && seconds > 0 ? Math.floor(seconds) : 0;
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
    return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

/** The last `maxLines` non-empty log lines, each cut to `maxChars` characters (with "…"). */
export function trimLogTail(lines, maxLines = 4, maxChars = 120) {
    if (!Array.isArray(lines) || maxLines <= 0) return [];
    const clean = lines
        .filter((line) => typeof line === "string")
        .map((line) => line.replace(/\s+/g, " ").trim())
        .filter((line) => line.length > 0);
    return clean.slice(-maxLines).map((line) => (line.length > maxChars ? line.slice(0, maxChars - 1) + "…" : line));
}

/**
 * The next display state of a remote node after a status event from the server.
 * `receivedAt` (ms) lets the clock keep ticking between events; a new run (no previous state, or a finished one)
 * starts fresh.
 */
export function applyStatusEvent(prev, detail, nowMs) {
    if (!detail || typeof detail !== "object") return prev ?? null;
    const phase = PHASES.includes(detail.phase) ? detail.phase : "running";
    const position = Number.isInteger(detail.position) && detail.position > 0 ? detail.position : null;
    return {
        phase,
        position,
        logs: Array.isArray(detail.logs) ? detail.logs.slice() : prev && !prev.outcome ? prev.logs : [],
        elapsedS: Number.isFinite(detail.elapsed_s) ? detail.elapsed_s : 0,
        requestId: typeof detail.request_id === "string" ? detail.request_id : null,
        error: typeof detail.error === "string" ? detail.error : null,
        receivedAt: nowMs,
        outcome: null, // set by finishStatus: "done" | "failed" | "cancelled"
    };
}

/** Seconds since the run started, counting on from the last event while the run is live. */
export function liveElapsed(state, nowMs) {
    if (!state) return 0;
    if (state.outcome) return state.elapsedS;
    return state.elapsedS + Math.max(0, nowMs - state.receivedAt) / 1000;
}

/** Freeze the clock when ComfyUI says the node finished (done), failed, or the prompt was cancelled. */
export function finishStatus(state, outcome, nowMs) {
    if (!state || state.outcome) return state;
    const result = ["done", "failed", "cancelled"].includes(outcome) ? outcome : "done";
    return { ...state, elapsedS: liveElapsed(state, nowMs), outcome: result === "done" && state.phase === "failed" ? "failed" : result };
}

/** True while the node's clock should tick (a run is under way). */
export function isLive(state) {
    return Boolean(state) && !state.outcome;
}

/** The lines drawn under the remote node: a headline, then the log tail. */
export function statusLines(state, nowMs, { maxLogLines = 4, maxChars = 120 } = {}) {
    if (!state) return [];
    const elapsed = formatElapsed(liveElapsed(state, nowMs));
    let head;
    if (state.outcome === "done") head = `fal.ai · done in ${elapsed}`;
    else if (state.outcome === "failed") head = `fal.ai · failed after ${elapsed}` + (state.error ? `: ${state.error}` : "");
    else if (state.outcome === "cancelled") head = `fal.ai · cancelled after ${elapsed}`;
    else if (state.phase === "queued") head = `fal.ai · queued${state.position ? `, position ${state.position}` : ""} · ${elapsed}`;
    else head = `fal.ai · ${state.phase} · ${elapsed}`;
    const lines = [head.length > maxChars ? head.slice(0, maxChars - 1) + "…" : head];
    return lines.concat(trimLogTail(state.logs, maxLogLines, maxChars).map((line) => `  ${line}`));
}

/** Does a status event's node id (maybe "outer:inner" inside a subgraph) name this node? */
export function sameNodeId(eventNodeId, nodeId) {
    if (eventNodeId === undefined || eventNodeId === null || nodeId === undefined || nodeId === null) return false;
    const a = String(eventNodeId);
    const b = String(nodeId);
    return a === b || a.split(":").pop() === b;
}

/**
 * What the key setting shows, from GET /auraflow/fal-key ({set, source, problem?}); never the key.
 * `null` means the server could not be asked.
 */
export function keyStatusLabel(status) {
    if (!status || typeof status !== "object") return "unknown (the server did not answer)";
    const where = status.source === "env" ? "environment" : status.source === "file" ? "file" : null;
    if (status.set && where) return `set (${where})`;
    if (where) return `set (${where}) but not usable`;
    return "not set";
}

/** The reason a typed key would be refused (the server checks the same), or null when it looks sendable. */
export function keyInputProblem(text) {
    if (typeof text !== "string" || text.trim() === "") return "the key is empty";
    const key = text.trim();
    for (const ch of key) {
        const code = ch.codePointAt(0);
        if (code < 33 || code >= 127) return "the key contains spaces, control or non-ASCII characters";
    }
    if (key.length > 1024) return "the key is too long";
    return null;
}

/**
 * What to do when ComfyUI reports a new value for the key setting (a frontend that shows a plain text field, or
 * a script setting it): send a usable key once, and clear any non-empty value so the key is not kept in
 * ComfyUI's settings file. Clearing writes "", which comes back here as a change and does nothing.
 */
export function decideKeySettingChange(newValue) {
    if (typeof newValue !== "string" || newValue === "") return { submit: null, clear: newValue !== "" && newValue != null };
    return { submit: keyInputProblem(newValue) === null ? newValue.trim() : null, clear: true };
}

/** The text shown on a node for the prompt it used, with any warnings after it. */
export function promptDisplayText(prompt, warnings = []) {
    const parts = [typeof prompt === "string" ? prompt : ""];
    for (const w of Array.isArray(warnings) ? warnings : []) if (typeof w === "string" && w) parts.push(w);
    return parts.join("\n\n");
}
