// AuraFlow fal.ai key setting (Settings → AuraFlow). The key is sent once to the pack's route
// (nodes/web_routes.py), which stores it server-side in a user-level file readable only by the user. The setting
// itself never holds the key: it is drawn by our own render function (a password field with Save / Remove that
// writes nothing into ComfyUI's settings), and shows only whether a key is set and where from (file or environment).
// Should a frontend show a plain text field instead, onChange sends the value once and clears the setting.
import { app } from "../../../scripts/app.js";
import { api } from "../../../scripts/api.js";
import { KEY_ROUTE, decideKeySettingChange, keyInputProblem, keyStatusLabel } from "./auraflow_logic.js";

const SETTING_ID = "AuraFlow.FalKey";

async function callRoute(method, key) {
    const init = { method, cache: "no-store" };
    if (key !== undefined) {
        init.headers = { "Content-Type": "application/json" };
        init.body = JSON.stringify({ key });
    }
    const response = await api.fetchApi(KEY_ROUTE, init);
    let body = null;
    try {
        body = await response.json();
    } catch {
        body = null;
    }
    if (!response.ok) throw new Error(body?.error ?? `HTTP ${response.status}`);
    return body;
}

async function fetchStatus() {
    try {
        return await callRoute("GET");
    } catch {
        return null;
    }
}

async function clearSettingValue() {
    const store = app.extensionManager?.setting;
    if (store?.set) await store.set(SETTING_ID, "");
    else await app.ui?.settings?.setSettingValueAsync?.(SETTING_ID, "");
}

function describe(status, answer) {
    let text = `fal key: ${keyStatusLabel(status)}`;
    if (status?.problem) text += ` (${status.problem})`;
    if (answer?.shadowed_by_env) text += " (saved; the environment's key is used while it is set)";
    return text;
}

function render() {
    const box = document.createElement("div");
    box.style.cssText = "display:flex;flex-direction:column;gap:4px;align-items:flex-end;";
    const status = document.createElement("span");
    status.style.cssText = "font-size:0.85em;opacity:0.8;";
    status.textContent = "fal key: …";
    const row = document.createElement("div");
    row.style.cssText = "display:flex;gap:4px;";
    const input = document.createElement("input");
    input.type = "password";
    input.autocomplete = "off";
    input.spellcheck = false;
    input.placeholder = "key_id:key_secret";
    input.style.cssText = "width:12rem;";
    const save = document.createElement("button");
    save.textContent = "Save";
    const remove = document.createElement("button");
    remove.textContent = "Remove";
    row.append(input, save, remove);
    box.append(status, row);

    const refresh = async (answer) => {
        status.textContent = describe(await fetchStatus(), answer);
    };
    const submit = async () => {
        const problem = keyInputProblem(input.value);
        if (problem) {
            status.textContent = `fal key not saved: ${problem}`;
            return;
        }
        const key = input.value.trim();
        input.value = ""; // the key leaves the page's DOM at once, whatever the answer
        try {
            await refresh(await callRoute("POST", key));
        } catch (err) {
            status.textContent = `fal key not saved: ${err.message}`;
        }
    };
    save.addEventListener("click", submit);
    input.addEventListener("keydown", (e) => {
        if (e.key === "Enter") submit();
    });
    remove.addEventListener("click", async () => {
        try {
            await callRoute("DELETE");
            await refresh();
        } catch (err) {
            status.textContent = `fal key file not removed: ${err.message}`;
        }
    });
    refresh();
    return box;
}

app.registerExtension({
    name: "ComfyUI-AuraFlow.FalKey",
    settings: [
        {
            id: SETTING_ID,
            category: ["AuraFlow", "fal.ai", "Key"],
            name: "fal.ai API key",
            tooltip:
                "Sent once to this ComfyUI server and stored in a file only your user can read " +
                "(~/.config/comfyui-auraflow/fal_key); never in workflows or images. FAL_KEY in the server's " +
                "environment takes precedence. Shows only whether a key is set.",
            type: render,
            defaultValue: "",
            async onChange(newValue) {
                const { submit, clear } = decideKeySettingChange(newValue);
                if (submit) {
                    try {
                        await callRoute("POST", submit);
                    } catch (err) {
                        console.warn(`[AuraFlow] fal key not saved: ${err.message}`);
                    }
                }
                // Awaited inside onChange: ComfyUI then persists this later write ("") instead of the key.
                if (clear) await clearSettingValue();
            },
        },
    ],
});
