"""The `tiny` preset: Wan 2.1's diffusers classes at toy sizes with fixed random weights, built offline.

Everything a real Wan run touches (WanTransformer3DModel, AutoencoderKLWan, UMT5EncoderModel, a
fast tokenizer, WanPipeline) is the same class here, so tests and CPU smoke runs exercise the
real code paths in seconds. The weights come from a fixed seed: every process builds the same model.
"""

from __future__ import annotations

import string

from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

from worldr1.device import seeded

TINY_SEED = 1234
TEXT_DIM = 32
MAX_SEQUENCE_LENGTH = 64
SPECIAL = ["<pad>", "</s>", "<unk>"]


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A character-level tokenizer with T5's special tokens (pad 0, eos 1, unk 2); no download."""
    chars = sorted(set(string.printable) - set("\t\n\r\x0b\x0c")) + list("’—éçàèüöä")
    vocab = {tok: i for i, tok in enumerate(SPECIAL + chars)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=MAX_SEQUENCE_LENGTH,
    )


def tiny_pipeline(shift: float = 5.0) -> WanPipeline:
    tokenizer = tiny_tokenizer()
    with seeded(TINY_SEED):
        transformer = WanTransformer3DModel(
            patch_size=(1, 2, 2),
            num_attention_heads=2,
            attention_head_dim=12,
            in_channels=16,
            out_channels=16,
            text_dim=TEXT_DIM,
            freq_dim=32,
            ffn_dim=48,
            num_layers=2,
            cross_attn_norm=True,
            qk_norm="rms_norm_across_heads",
            rope_max_seq_len=32,
        )
        vae = AutoencoderKLWan(
            base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
        )
        text_encoder = UMT5EncoderModel(
            UMT5Config(
                vocab_size=len(tokenizer),
                d_model=TEXT_DIM,
                d_kv=8,
                d_ff=64,
                num_layers=2,
                num_heads=4,
                relative_attention_num_buckets=8,
                pad_token_id=0,
                eos_token_id=1,
                decoder_start_token_id=0,
            )
        )
    return WanPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder.eval(),
        vae=vae.eval(),
        transformer=transformer.eval(),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=shift),
    )
