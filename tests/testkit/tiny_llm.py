"""A tiny random-weight causal LM and a tokenizer trained in code, saved like a ComfyUI ``models/LLM/<name>``.

Nothing is downloaded: the tokenizer is a ``tokenizers`` BPE trained on a few sentences, the model a 2-layer
LLaMA with hidden size 32 and random weights. Its words are nonsense, but loading, the chat template,
seeded generation, the token bound and clean-up all run for real.
"""

from __future__ import annotations

from pathlib import Path

# A Zephyr-like template: system and user turns, then the assistant's turn opened for generation.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

_CORPUS = [
    "a red fox sitting in the snow at golden hour, soft light and long shadows",
    "a portrait of an old fisherman with a weathered face, photographed with an 85mm lens",
    "a quiet mountain lake at dawn with mist over the water and pine trees on the shore",
    "a cozy reading nook in a library, warm lamplight, watercolor painting with soft washes",
    "a cup of coffee on a rustic wooden table, steam rising, shallow depth of field",
    "an astronaut riding a horse across a desert, cinematic wide shot, dramatic clouds",
    "the image shows intricate detail, crisp focus, rich colors and a balanced composition",
    "turn short image ideas into detailed prompts for a text to image model",
]


def build_tiny_causal_lm(folder: Path, *, chat_template: str | None = CHAT_TEMPLATE, seed: int = 0) -> Path:
    """Write tokenizer + config + random weights into ``folder`` and return it (loadable with Auto* classes)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<pad>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(_CORPUS * 4, trainers.BpeTrainer(vocab_size=300, special_tokens=specials))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                   pad_token="<pad>")
    if chat_template is not None:
        fast.chat_template = chat_template
    folder.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(folder)

    config = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                         bos_token_id=1, eos_token_id=2, pad_token_id=3, tie_word_embeddings=True)
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder
