"""`s_meta`: a vision-language judge (Qwen3-VL) rates the meta-view render 0-9 (see `digit_score.py`).

As in World-R1, the judge sees the render from the input camera farthest from the first one and is
asked about it with the video's text prompt and a rubric: real 3D structure and parallax, or a
static or flat picture; distortions. The wording (`question`) is ours; the digit arithmetic is
World-R1's (the expected digit under the softmax over the ten digit tokens, over 9).

`tiny` builds Qwen3-VL's transformers classes at toy sizes with fixed random weights and an
offline character tokenizer, for tests and CPU runs; anything else is a local folder, a repo id
in `./models` or the Hugging Face cache (never downloaded here).
"""

from __future__ import annotations

import string

import numpy as np
import torch

from worldr1 import weights
from worldr1.device import default_device, seeded
from worldr1.errors import UserError
from worldr1.rewards.digit_score import digit_token_ids, expected_digit_score

QUESTION = (
    'A video was generated for the text prompt "{prompt}". A 3D scene was reconstructed from that video, '
    "and this image renders it from the camera farthest from where the video started.\n"
    "Judge the reconstructed scene:\n"
    "- Does it have real 3D structure, with the depth and parallax the camera's motion should reveal, "
    "or is it a static or flat picture, like a photo pasted into space?\n"
    "- Are there distortions: smeared, stretched or torn surfaces, floating fragments, holes, "
    "or objects that fall apart?\n"
    "- Does the scene still show what the prompt asks for?\n"
    "Rate it from 0 to 9: 0-1 nothing usable (empty, noise); 2-3 a flat or static picture, or a jumble; "
    "4-6 recognisable but flat, sparse or distorted; 7-8 solid 3D structure with small flaws; "
    "9 a clean, complete scene with clear depth and no distortions.\n"
    "Answer with a single digit (0-9)."
)


def question(prompt: str) -> str:
    """The judge's question about one video's meta-view render, naming the video's prompt."""
    return QUESTION.format(prompt=" ".join(prompt.split()).replace('"', "'"))


PRESETS = {"qwen3-vl-4b": "Qwen/Qwen3-VL-4B-Instruct"}
TINY_SEED = 777
_SPECIAL = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]


def _user_turn(processor, question: str) -> str:  # noqa: ANN001
    if getattr(processor, "chat_template", None):
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
        return processor.apply_chat_template(messages, add_generation_prompt=True)
    return f"<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>{question}<|im_end|>\n<|im_start|>assistant\n"


def _tiny():  # noqa: ANN202
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen3VLConfig, Qwen3VLForConditionalGeneration, Qwen3VLProcessor
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    vocab = {t: i for i, t in enumerate(_SPECIAL + sorted(set(string.printable) - set("\t\r\x0b\x0c")))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<|endoftext|>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
        unk_token="<|endoftext|>",
        additional_special_tokens=_SPECIAL[1:],
    )
    image = Qwen2VLImageProcessor(
        patch_size=16, temporal_patch_size=2, merge_size=2, min_pixels=32 * 32, max_pixels=128 * 128
    )
    video = Qwen3VLVideoProcessor(patch_size=16, temporal_patch_size=2, merge_size=2)
    processor = Qwen3VLProcessor(image_processor=image, tokenizer=tokenizer, video_processor=video)
    config = Qwen3VLConfig(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=8,
            rope_parameters={
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": [2, 1, 1],
                "mrope_interleaved": True,
            },
        ),
        vision_config=dict(
            depth=2,
            hidden_size=32,
            intermediate_size=64,
            num_heads=4,
            patch_size=16,
            spatial_merge_size=2,
            temporal_patch_size=2,
            out_hidden_size=32,
            num_position_embeddings=64,
            deepstack_visual_indexes=[1],
        ),
        image_token_id=vocab["<|image_pad|>"],
        video_token_id=vocab["<|video_pad|>"],
        vision_start_token_id=vocab["<|vision_start|>"],
        vision_end_token_id=vocab["<|vision_end|>"],
    )
    with seeded(TINY_SEED):
        model = Qwen3VLForConditionalGeneration(config)
    return model, processor


class QwenJudge:
    def __init__(self, model: str, device: torch.device | None = None) -> None:
        self.device = device or default_device()
        if model == "tiny":
            self.model, self.processor = _tiny()
            self.name = "qwen3-vl (tiny random)"
        else:
            from transformers import AutoProcessor, Qwen3VLForConditionalGeneration

            repo = PRESETS.get(model, model)
            path = weights.require(repo, "config.json")
            dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
            try:
                self.model = Qwen3VLForConditionalGeneration.from_pretrained(path, dtype=dtype, local_files_only=True)
                self.processor = AutoProcessor.from_pretrained(path, local_files_only=True)
            except (OSError, ValueError) as exc:
                raise UserError(
                    f"could not load the judge from {path}: {exc}", "check the folder is a complete snapshot"
                ) from None
            self.name = repo
        self.model = self.model.to(self.device).eval()
        # Left padding puts every prompt's answer position last, so one batched forward reads them all.
        self.processor.tokenizer.padding_side = "left"
        self.digits = digit_token_ids(self.processor.tokenizer)

    @torch.no_grad()
    def rate(self, images: list[np.ndarray], prompts: list[str], batch: int = 8) -> list[float]:
        """Score in [0, 1] of each uint8 `[H, W, 3]` meta-view render, asked about with its video's prompt."""
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
        out: list[float] = []
        for i in range(0, len(images), batch):
            # The processor hands the arrays to torch as they are; a render read back from its PNG is
            # read-only, and torch warns about (and must not write into) a non-writable array.
            chunk = [np.require(im, requirements="W") for im in images[i : i + batch]]
            texts = [_user_turn(self.processor, question(p)) for p in prompts[i : i + batch]]
            inputs = self.processor(text=texts, images=chunk, return_tensors="pt", padding=True)
            logits = self.model(**inputs.to(self.device)).logits[:, -1]
            out += expected_digit_score(logits, self.digits).tolist()
        return out
