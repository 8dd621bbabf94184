// Show on a node the prompt it used, in one read-only multiline box (made on the first run, reused after):
// - AuraFlow Prompt Expand: the text the node returned in {"ui": {"text": [...]}} (the expanded prompt and any
//   warnings, lines starting with "⚠"); ComfyUI's frontend does not display a node's ui.text on its own.
// - generation nodes (AuraFlow (fal.ai), its result node, AuraFlow Generate): the prompt the model actually saw,
//   from the "auraflow.prompt" event (nodes/_ui_events.py), as their `prompt` output holds it.
// The box is added after every input widget and is not serialised, so the positional widgets_values of the real
// inputs keep their places and saved workflows do not change.
import { app } from "../../../scripts/app.js";
import { api } from "../../../scripts/api.js";
import { ComfyWidgets } from "../../../scripts/widgets.js";
import { PROMPT_EVENT, promptDisplayText } from "./auraflow_logic.js";

const EXPAND_NODE = "AuraFlowPromptExpand";
const EXPAND_WIDGET = "expanded_text";
const PROMPT_WIDGET = "prompt_used";

function showText(node, name, text) {
    let widget = node.widgets?.find((w) => w.name === name);
    if (!widget) {
        widget = ComfyWidgets.STRING(node, name, ["STRING", { multiline: true }], app).widget;
        widget.serialize = false; // output, not an input: keep it out of saved workflows
        if (widget.inputEl) {
            widget.inputEl.readOnly = true;
            widget.inputEl.style.opacity = 0.85;
        }
    }
    widget.value = text;
    node.setDirtyCanvas?.(true, true);
}

app.registerExtension({
    name: "ComfyUI-AuraFlow.PromptExpand",
    setup() {
        api.addEventListener(PROMPT_EVENT, ({ detail }) => {
            if (detail?.node === undefined || detail?.node === null) return;
            const node = app.graph?.getNodeById?.(String(detail.node).split(":").pop());
            if (node) showText(node, PROMPT_WIDGET, promptDisplayText(detail.prompt));
        });
    },
    async beforeRegisterNodeDef(nodeType, nodeData) {
        if (nodeData.name !== EXPAND_NODE) return;
        const onExecuted = nodeType.prototype.onExecuted;
        nodeType.prototype.onExecuted = function (message) {
            onExecuted?.apply(this, arguments);
            const [prompt, ...warnings] = message?.text ?? [];
            showText(this, EXPAND_WIDGET, promptDisplayText(prompt, warnings));
        };
    },
});
