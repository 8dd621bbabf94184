// AuraFlow Prompt Expand: show the text the node returned in {"ui": {"text": [...]}} on the node itself.
// ComfyUI's frontend does not display a node's ui.text on its own; this adds one read-only multiline box (made on
// the first run, reused after) holding the expanded prompt and any warnings (lines starting with "⚠").
// The box is added after every input widget, so even if a frontend serialises it, the positional
// widgets_values of the real inputs keep their places.
import { app } from "../../scripts/app.js";
import { ComfyWidgets } from "../../scripts/widgets.js";

const NODE_ID = "AuraFlowPromptExpand";
const WIDGET = "expanded_text";

app.registerExtension({
    name: "ComfyUI-AuraFlow.PromptExpand",
    async beforeRegisterNodeDef(nodeType, nodeData) {
        if (nodeData.name !== NODE_ID) return;
        const onExecuted = nodeType.prototype.onExecuted;
        nodeType.prototype.onExecuted = function (message) {
            onExecuted?.apply(this, arguments);
            const text = (message?.text ?? []).join("\n\n");
            let widget = this.widgets?.find((w) => w.name === WIDGET);
            if (!widget) {
                widget = ComfyWidgets.STRING(this, WIDGET, ["STRING", { multiline: true }], app).widget;
                widget.serialize = false; // output, not an input: keep it out of saved workflows
                if (widget.inputEl) {
                    widget.inputEl.readOnly = true;
                    widget.inputEl.style.opacity = 0.85;
                }
            }
            widget.value = text;
            this.setDirtyCanvas?.(true, true);
        };
    },
});
