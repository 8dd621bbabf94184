// AuraFlow (fal.ai) nodes: draw the request's state under the node while it runs (queue position, elapsed time
// ticking every second, the tail of the model's log) and how it ended (done / failed / cancelled, with the time).
// Data comes from the "auraflow.fal_status" event (nodes/_ui_events.py); ComfyUI's own progress_text line on
// the node stays as the plain-text version. Nothing here is saved in the workflow.
import { app } from "../../../scripts/app.js";
import { api } from "../../../scripts/api.js";
import {
    FAL_NODES,
    FAL_STATUS_EVENT,
    applyStatusEvent,
    finishStatus,
    isLive,
    sameNodeId,
    statusLines,
} from "./auraflow_logic.js";

const states = new Map(); // event node id (string) -> display state
let ticker = null;
let runningNode = null; // the node id ComfyUI last said was executing

function redraw() {
    app.graph?.setDirtyCanvas?.(true, false);
}

function updateTicker() {
    const live = [...states.values()].some(isLive);
    if (live && ticker === null) ticker = setInterval(redraw, 1000);
    if (!live && ticker !== null) {
        clearInterval(ticker);
        ticker = null;
    }
}

function finish(predicate, outcome) {
    const now = Date.now();
    for (const [id, state] of states) if (isLive(state) && predicate(id)) states.set(id, finishStatus(state, outcome, now));
    updateTicker();
    redraw();
}

function stateFor(node) {
    for (const [id, state] of states) if (sameNodeId(id, node.id)) return state;
    return null;
}

app.registerExtension({
    name: "ComfyUI-AuraFlow.FalStatus",
    setup() {
        api.addEventListener(FAL_STATUS_EVENT, ({ detail }) => {
            if (!detail?.node) return;
            const id = String(detail.node);
            states.set(id, applyStatusEvent(states.get(id), detail, Date.now()));
            updateTicker();
            redraw();
        });
        api.addEventListener("executing", ({ detail }) => {
            // detail is the node id (or {node}) now running; null when the prompt is done
            const next = detail && typeof detail === "object" ? detail.node : detail;
            if (runningNode !== null && String(next) !== String(runningNode)) {
                const ended = String(runningNode);
                finish((id) => id === ended, "done");
            }
            runningNode = next ?? null;
            if (next === null || next === undefined) finish(() => true, "done");
        });
        api.addEventListener("execution_error", ({ detail }) => {
            finish((id) => detail?.node_id === undefined || sameNodeId(id, detail.node_id), "failed");
        });
        api.addEventListener("execution_interrupted", () => finish(() => true, "cancelled"));
    },
    async beforeRegisterNodeDef(nodeType, nodeData) {
        if (!FAL_NODES.includes(nodeData.name)) return;
        const onDrawForeground = nodeType.prototype.onDrawForeground;
        nodeType.prototype.onDrawForeground = function (ctx) {
            const result = onDrawForeground?.apply(this, arguments);
            if (this.flags?.collapsed) return result;
            const lines = statusLines(stateFor(this), Date.now());
            if (!lines.length) return result;
            const lineHeight = 14;
            ctx.save();
            ctx.font = "11px sans-serif";
            ctx.textAlign = "left";
            ctx.textBaseline = "top";
            ctx.fillStyle = "rgba(0,0,0,0.55)";
            ctx.fillRect(0, this.size[1] + 4, this.size[0], lines.length * lineHeight + 6);
            ctx.fillStyle = "#ddd";
            const maxWidth = this.size[0] - 8;
            lines.forEach((line, i) => ctx.fillText(line, 4, this.size[1] + 7 + i * lineHeight, maxWidth));
            ctx.restore();
            return result;
        };
    },
});
