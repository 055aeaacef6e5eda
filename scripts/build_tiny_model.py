"""Build a tiny random-weight Llama (tokenizer + config + weights) for the real-vLLM end-to-end tests.

Run with the vLLM venv's python (it needs torch, transformers and tokenizers):

    python scripts/build_tiny_model.py OUT_DIR

Nothing is downloaded: the byte-level BPE tokenizer is trained here on a few sentences and the weights
are random (seeded). Heads are 64 wide because the CPU attention backend rejects smaller heads
(head_dim 16 kills the engine with "Unsupported CPU attention configuration").

Size: hidden 1024, 8 layers (~70M parameters, 160 MB) by default, not a 128/2 toy:
the engine, not the API server, must be the bottleneck.
Measured on this 2-core box under other load: the 128/2 model decodes ~1400 tokens/s and 512/4 ~300 steps/s,
faster than vLLM's CPU-starved API server can turn engine steps into responses; requests then queue
inside the API server, the engine drains in convoys, and /metrics reads running=waiting=kv=0 in most
scrapes of an overload (and takes seconds to answer). At 1024/8 a step costs ~20 ms of real compute, the
frontend keeps up, and the gauges show overload as it happens (e.g. 2 running, 28 waiting, steady).
Pass ``--head-dim-16`` to build exactly that broken model, for the "engine dies at start-up" test.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A serving engine schedules requests, caches keys and values, and streams tokens back.",
    "When the cache is full the scheduler preempts a running request and puts it back in the queue.",
    "Monitoring the queue, the cache and the latency tells an operator what went wrong and when.",
    "Large language models answer questions, write code, summarise documents and translate text.",
    "user assistant system hello world one two three four five six seven eight nine ten",
    "Prefix caching reuses blocks that many prompts share, so the first token arrives sooner.",
    "Numbers like 0 1 2 3 4 5 6 7 8 9 and punctuation ! ? , . ; : ' \" ( ) [ ] { } - _ / appear too.",
]

CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def build(out: Path, head_dim_16: bool, hidden_size: int = 1024, layers: int = 8) -> None:
    # These live only in the vLLM venv this script runs in, not in the project's environment.
    import torch  # type: ignore[import-not-found, unused-ignore]
    from tokenizers import (  # type: ignore[import-not-found, unused-ignore]
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        trainers,
    )
    from transformers import (  # type: ignore[import-not-found, unused-ignore]
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
    )

    out.mkdir(parents=True, exist_ok=True)
    special = ["<unk>", "<s>", "</s>", "<pad>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte encodes: no <unk> ever
    )
    tok.train_from_iterator(SENTENCES * 20, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>"
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.model_max_length = 512
    fast.save_pretrained(out)

    hidden, heads = (32, 2) if head_dim_16 else (hidden_size, hidden_size // 64)
    cfg = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=hidden,
        intermediate_size=2 * hidden if not head_dim_16 else 256,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=512,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    model.save_pretrained(out)
    (out / "inferguard-tiny.json").write_text(json.dumps({"head_dim": hidden // heads, "vocab": len(fast)}))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("out", type=Path)
    ap.add_argument("--head-dim-16", action="store_true", help="build the unsupported-config model")
    ap.add_argument("--hidden", type=int, default=1024, help="hidden size (heads of 64)")
    ap.add_argument("--layers", type=int, default=8)
    args = ap.parse_args(argv)
    build(args.out, args.head_dim_16, args.hidden, args.layers)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
