"""The teacher: BLIP-2 (T5 language model) as an image -> "LLM knowledge" encoder.

e_G = normalize(mean over all positions of T5-encoder([projected Q-Former tokens ; embedded instruction])).
Only the vision encoder, the Q-Former, the projector, the shared embedding and the T5 encoder are built and
loaded: the T5 decoder and LM head (about half of the LLM) never reach memory. Nothing is decoded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..data.images import Preprocess, preprocess_for_model
from ..data.safe import safe_join
from ..devices import resolve_device
from ..errors import InputError
from ..schema import Fields, read_json
from .checks import TensorInfo, check_config, check_shapes, meta_shapes, read_header, weight_headers
from .hub import ModelNotAvailableError, ResolvedModel, resolve_model, weight_files
from .names import DEFAULT_TEACHER, INSTRUCTIONS, LLM_CONTEXT, resolve_instruction  # noqa: F401

log = logging.getLogger(__name__)

# Checkpoint key prefixes (as saved by Blip2ForConditionalGeneration) -> our module names.
_PREFIXES = {
    "vision_model.": "vision_model.",
    "qformer.": "qformer.",
    "language_projection.": "language_projection.",
    "language_model.encoder.": "t5.encoder.",
    "language_model.shared.": "t5.shared.",
}


def teacher_dtype(device: torch.device, dtype: str | torch.dtype | None) -> torch.dtype:
    """bfloat16 on GPU, float32 on CPU unless asked; float16 is refused (Flan-T5 overflows to NaN in it)."""
    if isinstance(dtype, str):
        dtype = {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float32": torch.float32, "fp32": torch.float32,
                 "float16": torch.float16, "fp16": torch.float16, "half": torch.float16, "auto": None}.get(dtype, dtype)
        if isinstance(dtype, str):
            raise InputError(f"unknown teacher dtype {dtype!r}; use bfloat16, float32 or auto")
    if dtype == torch.float16:
        raise InputError(
            "float16 is refused for the T5 teacher: Flan-T5 activations overflow float16 and give NaN or garbage "
            "targets. Use bfloat16 (GPU) or float32 (CPU)."
        )
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return dtype


def _checkpoint_keys(path: Path) -> dict[str, TensorInfo]:
    """Every tensor of the model's safetensors files (name -> dtype, shape and file), from their headers alone."""
    index = path / "model.safetensors.index.json"
    if index.is_file():
        wm = Fields(read_json(index, ModelNotAvailableError, "weight index"), index, ModelNotAvailableError).dict(
            "weight_map")
        bad = sorted({str(v) for v in wm.values() if not str(v).endswith(".safetensors")})
        if bad:
            raise ModelNotAvailableError(f"{index} maps weights to {bad[:3]}: only .safetensors shards are loaded")
        # Lexical check only: files of the hub cache are links into its blobs/ folder.
        files = {v: safe_join(path, v, source=str(index), resolve=False) for v in set(wm.values())}
        headers = {v: read_header(f) for v, f in files.items()}
        missing = sorted(k for k, v in wm.items() if k not in headers[v])
        if missing:
            raise ModelNotAvailableError(f"{index} lists {missing[:3]} in shards that do not hold them")
        return {k: headers[v][k] for k, v in wm.items()}
    return weight_headers(weight_files(path))


def _model_name(key: str) -> str | None:
    """Our module's name of a Blip2ForConditionalGeneration checkpoint tensor, or None for one we do not load."""
    if key == "query_tokens":
        return key
    return next((v + key[len(p):] for p, v in _PREFIXES.items() if key.startswith(p)), None)


def check_teacher(name: str | Path, revision: str | None = None, local_files_only: bool | None = None):
    """Resolve ``name`` and check, from its config files and the weights' headers alone (nothing allocated, no
    weights read), that it is a BLIP-2 with a T5 (encoder-decoder) LLM whose weights fit its config.

    Returns (resolved model, Blip2Config, checkpoint tensors); raises ModelNotAvailableError naming the file."""
    from transformers import Blip2Config

    resolved = resolve_model(name, revision, local_files_only)
    check_config(resolved.path / "config.json")
    try:
        config = Blip2Config.from_pretrained(resolved.path, trust_remote_code=False)
    except Exception as e:  # transformers' own validation raises many kinds: all mean a config it cannot use
        raise ModelNotAvailableError(f"{resolved.path / 'config.json'}: not a BLIP-2 config transformers can "
                                     f"read ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
    if getattr(config, "model_type", "") != "blip-2" or not getattr(config.text_config, "is_encoder_decoder", False):
        raise ModelNotAvailableError(
            f"{name!r} is not BLIP-2 with a T5 (encoder-decoder) language model "
            f"(model_type={getattr(config, 'model_type', '?')}, text model={config.text_config.model_type}); "
            "the teacher needs an LLM encoder, e.g. Salesforce/blip2-flan-t5-xxl"
        )
    keys = _checkpoint_keys(resolved.path)
    shapes = meta_shapes(lambda: Teacher(config, None, TeacherInfo(resolved, torch.float32)))
    if shapes is not None:
        check_shapes(shapes, keys, resolved.path / "config.json", rename=_model_name)
    return resolved, config, keys


@dataclass(frozen=True)
class TeacherInfo:
    resolved: ResolvedModel
    dtype: torch.dtype


class Teacher(nn.Module):
    """BLIP-2's vision encoder + Q-Former + projector + T5 encoder (no decoder)."""

    def __init__(self, config, tokenizer, info: TeacherInfo):
        super().__init__()
        from transformers import T5EncoderModel
        from transformers.models.blip_2.modeling_blip_2 import Blip2QFormerModel, Blip2VisionModel

        self.config = config
        self.tokenizer = tokenizer
        self.info = info
        self.vision_model = Blip2VisionModel(config.vision_config)
        self.query_tokens = nn.Parameter(torch.zeros(1, config.num_query_tokens, config.qformer_config.hidden_size))
        self.qformer = Blip2QFormerModel(config.qformer_config)
        self.language_projection = nn.Linear(config.qformer_config.hidden_size, config.text_config.hidden_size)
        self.t5 = T5EncoderModel(config.text_config)
        # One embedding table: transformers 5.0 gives the encoder its own copy (131M parameters at xxl size).
        self.t5.encoder.embed_tokens = self.t5.shared
        self._instruction_cache: dict[str, torch.Tensor] = {}
        self.device_map: dict[str, str] | None = None  # set when loaded over several devices

    # ----------------------------------------------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path = DEFAULT_TEACHER,
        revision: str | None = None,
        device: str | torch.device | None = "cpu",
        dtype: str | torch.dtype | None = None,
        local_files_only: bool | None = None,
        device_map: str | list | dict | None = None,
    ) -> "Teacher":
        """Load the encoder parts of a BLIP-2 + T5 checkpoint (hub id or local directory).

        The modules are built on the meta device and filled straight from the safetensors files, so neither the
        random init nor the decoder ever costs memory. ``dtype``: None = bfloat16 on GPU, float32 on CPU.
        ``device_map`` (for a teacher too large for one GPU): "auto" (this process's GPUs), a list of devices, or
        ``{module prefix: device}``; see :mod:`expclip.models.placement`. ``device`` then only picks the dtype.
        """
        from safetensors import safe_open
        from transformers import AutoTokenizer

        from .placement import attach_input_movers, device_of, primary_device, resolve_device_map

        # With a device map, its first device holds the image path and decides the dtype.
        dev = resolve_device(device) if device_map is None else primary_device(device_map)
        dt = teacher_dtype(dev, dtype)
        resolved, config, keymap = check_teacher(name_or_path, revision, local_files_only)
        tokenizer = AutoTokenizer.from_pretrained(resolved.path, trust_remote_code=False)
        with torch.device("meta"):
            model = cls(config, tokenizer, TeacherInfo(resolved, dt))
        placement = resolve_device_map(device_map, model) if device_map is not None else {}
        wanted = {k: v.file for k, v in keymap.items() if _model_name(k) is not None}
        state: dict[str, torch.Tensor] = {}
        by_file: dict[Path, list[str]] = {}
        for k, f in wanted.items():
            by_file.setdefault(f, []).append(k)
        for f, keys in by_file.items():
            with safe_open(f, "pt", device="cpu") as fh:
                for k in keys:
                    name = _model_name(k)
                    if name == "t5.encoder.embed_tokens.weight":
                        continue  # tied to shared
                    # Q-Former and query tokens stay float32 (as transformers keeps them), the rest in dt.
                    keep32 = name == "query_tokens" or name.startswith("qformer.")
                    target = device_of(name, placement, dev)
                    state[name] = fh.get_tensor(k).to(device=target, dtype=torch.float32 if keep32 else dt)
        if "t5.shared.weight" in state:
            state["t5.encoder.embed_tokens.weight"] = state["t5.shared.weight"]
        expected = set(model.state_dict().keys())
        missing = sorted(expected - set(state))
        if missing:
            raise ModelNotAvailableError(
                f"{resolved.path}: checkpoint lacks {len(missing)} teacher tensors, e.g. {missing[:3]}; "
                "is it a Blip2ForConditionalGeneration checkpoint?"
            )
        model.load_state_dict(state, strict=True, assign=True)
        model.t5.encoder.embed_tokens = model.t5.shared
        model.eval().requires_grad_(False)
        if placement:
            attach_input_movers(model, placement)
            dev = ", ".join(dict.fromkeys(placement.values()))
        model.device_map = placement or None
        log.info("teacher %s (%s) loaded on %s in %s without the T5 decoder", resolved.name, resolved.revision, dev, dt)
        return model

    # ----------------------------------------------------------------------------------------------------- identity
    @property
    def device(self) -> torch.device:
        return self.query_tokens.device

    @property
    def dtype(self) -> torch.dtype:
        return self.info.dtype

    @property
    def embed_dim(self) -> int:
        return int(self.config.text_config.hidden_size)

    @property
    def image_size(self) -> int:
        return int(self.config.vision_config.image_size)

    def preprocess(self, mode: str = "reference") -> Preprocess:
        return preprocess_for_model(self.info.resolved.path, mode, self.image_size)

    def identity(self) -> dict:
        return {"id": self.info.resolved.name, "revision": self.info.resolved.revision}

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @property
    def context_length(self) -> int:
        """Tokens the LLM reads: the tokenizer's limit (512 for Flan-T5); tokenizers without one count as 512."""
        n = getattr(self.tokenizer, "model_max_length", None)
        return int(n) if isinstance(n, int) and 0 < n < 1_000_000 else LLM_CONTEXT

    def check_instruction(self, text: str) -> None:
        """Refuse an instruction that does not fit the LLM's context beside the image's query tokens (a longer one
        is never silently cut: the targets would be of another instruction)."""
        limit = self.context_length - int(self.config.num_query_tokens)
        n = len(self.instruction_ids(text))
        if n > limit:
            raise InputError(f"--instruction is {n} tokens for {self.info.resolved.name}, whose LLM reads "
                             f"{self.context_length} tokens, {self.config.num_query_tokens} of them the image's: "
                             f"shorten it to at most {limit} tokens")

    # ----------------------------------------------------------------------------------------------------- forward
    def instruction_ids(self, text: str) -> torch.Tensor:
        """(L,) token ids of ``text`` from the T5 tokenizer alone (with its ``</s>``; no ``<image>`` tokens)."""
        if text not in self._instruction_cache:
            if len(text.split()) > LLM_CONTEXT:  # more words than tokens that fit: not worth tokenizing
                resolve_instruction(text)
            ids = self.tokenizer(text, add_special_tokens=True, return_tensors="pt")["input_ids"][0]
            self._instruction_cache[text] = ids
        return self._instruction_cache[text]

    @torch.inference_mode()
    def image_tokens(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) -> (B,Q,E): Q-Former query outputs projected into the LLM's embedding space."""
        x = pixel_values.to(self.device, self.dtype, non_blocking=True)
        image_embeds = self.vision_model(pixel_values=x).last_hidden_state
        queries = self.query_tokens.expand(image_embeds.shape[0], -1, -1)
        # No mask: every image position is attended (an all-ones mask costs transformers a device sync to drop it).
        q = self.qformer(query_embeds=queries, encoder_hidden_states=image_embeds.float())
        return self.language_projection(q.last_hidden_state.to(self.dtype))

    @torch.inference_mode()
    def encode(self, pixel_values: torch.Tensor, instruction: str | list[str] = INSTRUCTIONS["task"]) -> torch.Tensor:
        """(B,3,H,W) preprocessed images -> (B,E) float32 L2-normalized targets e_G.

        ``instruction``: one string for the batch, or one per image (padded; the mean ignores padding).
        """
        texts = [instruction] * len(pixel_values) if isinstance(instruction, str) else list(instruction)
        for t in set(texts):  # before the image encoder runs
            self.check_instruction(t)
        tokens = self.image_tokens(pixel_values)
        b, q, _ = tokens.shape
        if len(texts) != b:
            raise InputError(f"{len(texts)} instructions for {b} images")
        ids = [self.instruction_ids(t) for t in texts]
        length = max(len(i) for i in ids)
        pad = self.tokenizer.pad_token_id or 0
        input_ids = torch.full((b, length), pad, dtype=torch.long)
        text_mask = torch.zeros((b, length), dtype=torch.long)
        for r, i in enumerate(ids):
            input_ids[r, : len(i)] = i
            text_mask[r, : len(i)] = 1
        emb = self.t5.shared.weight.device  # with a device map, the encoder's last blocks may live elsewhere
        input_ids, text_mask = input_ids.to(emb), text_mask.to(emb)
        embeds = torch.cat([tokens.to(emb), self.t5.shared(input_ids).to(self.dtype)], dim=1)
        mask = torch.cat([torch.ones((b, q), dtype=torch.long, device=emb), text_mask], dim=1)
        padded = any(len(i) < length for i in ids)  # known on the host: no device sync to find out
        hidden = self.t5.encoder(inputs_embeds=embeds, attention_mask=mask if padded else None)
        hidden = hidden.last_hidden_state.to(emb).float()
        m = mask.unsqueeze(-1).float()
        pooled = (hidden * m).sum(1) / m.sum(1)
        return F.normalize(pooled, dim=-1)

    @torch.inference_mode()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """Texts through the T5 encoder alone (no image tokens), mean-pooled and normalized: (N,E) float32.

        Used by the "LLM as text encoder" ablation.
        """
        tok = self.tokenizer(texts, padding=True, return_tensors="pt").to(self.device)
        hidden = self.t5.encoder(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"]).last_hidden_state
        m = tok["attention_mask"].unsqueeze(-1).float()
        return F.normalize((hidden.float() * m).sum(1) / m.sum(1), dim=-1)
