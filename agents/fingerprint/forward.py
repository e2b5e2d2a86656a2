"""A decoder forward pass with explicit key/value context, for Llama-style models.

The embedder trains only the top of the network and only needs the model's outputs at a few
positions per sequence (the response tokens). This module runs decoder layers on a *suffix* of
positions whose attention context (keys and values of the earlier positions, per layer) is given
as tensors, so that:

* the base model runs once over every sequence, keeping the hidden states entering the trained
  block and the block's keys/values (:meth:`Decoder.encode`);
* greedy/sampled continuation extends those keys/values token by token (no second prefill);
* a training step runs the trained layers on the response positions only, attending to the
  cached context (:meth:`Decoder.run`), instead of on whole sequences.

It calls the model's own modules (projections, norms, MLP, rotary embedding), so LoRA-wrapped
projections work unchanged. Checked against the transformers forward in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agents.fingerprint.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel


def backbone(model: PreTrainedModel) -> Any:
    """The decoder stack (``model.model`` with ``.layers``) of a decoder-only model."""
    inner = getattr(model, "model", None)
    if inner is None or not hasattr(inner, "layers"):
        # A peft wrapper: PeftModel.base_model.model is the causal LM.
        wrapped = getattr(getattr(model, "base_model", None), "model", None)
        if wrapped is not None and wrapped is not model:
            return backbone(wrapped)
        raise ConfigError(
            f"{type(model).__name__} is not a decoder-only model with .model.layers "
            "(Llama/Mistral/Qwen style); use one of those architectures"
        )
    return inner


@dataclass
class Context:
    """Keys/values per layer for a batch: ``keys[i]`` is (B, kv_heads, C, head_dim) for the
    i-th layer of the run; ``valid`` (B, C) marks real (not padding) columns."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    valid: torch.Tensor

    def extend(self, keys: list[torch.Tensor], values: list[torch.Tensor], valid: Any) -> Context:
        import torch

        return Context(
            [torch.cat([a, b], dim=2) for a, b in zip(self.keys, keys, strict=True)],
            [torch.cat([a, b], dim=2) for a, b in zip(self.values, values, strict=True)],
            torch.cat([self.valid, valid], dim=1),
        )


class Decoder:
    """Runs ``model``'s decoder layers ``[start, stop)`` on hidden states with explicit context."""

    def __init__(self, model: PreTrainedModel) -> None:
        from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

        self.model = model
        self.stack = backbone(model)
        config = model.config
        self.heads = int(config.num_attention_heads)
        self.kv_heads = int(getattr(config, "num_key_value_heads", None) or self.heads)
        self.head_dim = int(
            getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        )
        self.num_layers = len(self.stack.layers)
        self._head_copies: dict[torch.dtype, torch.Tensor] = {}
        self._rope = apply_rotary_pos_emb
        for layer in self.stack.layers:
            attn = getattr(layer, "self_attn", None)
            if attn is None or not all(
                hasattr(attn, n) for n in ("q_proj", "k_proj", "v_proj", "o_proj")
            ):
                raise ConfigError(
                    f"{type(layer).__name__} has no Llama-style self_attn.{{q,k,v,o}}_proj; "
                    "use a Llama/Mistral/Qwen-style model"
                )

    @property
    def layers(self) -> list[Any]:
        return list(self.stack.layers)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.stack.embed_tokens(ids)  # type: ignore[no-any-return]

    def logits(
        self,
        hidden: torch.Tensor,
        rows: torch.Tensor | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """Next-token logits (float32) from last-layer hidden states; ``rows`` restricts the
        vocabulary; ``dtype`` runs the head in that precision (a cached copy of its weights:
        only for a head that does not train)."""
        normed = self.stack.norm(hidden)
        head = self.model.get_output_embeddings()
        if dtype is not None and dtype != head.weight.dtype and rows is None:
            copy = self._head_copies.get(dtype)
            if copy is None:
                copy = self._head_copies[dtype] = head.weight.detach().to(dtype)
            out = normed.to(dtype) @ copy.T
            if getattr(head, "bias", None) is not None:
                out = out + head.bias.to(dtype)
            return out.float()  # type: ignore[no-any-return]
        if rows is None:
            return head(normed).float()  # type: ignore[no-any-return]
        weight = head.weight[rows]
        out = normed @ weight.T
        if getattr(head, "bias", None) is not None:
            out = out + head.bias[rows]
        return out.float()  # type: ignore[no-any-return]

    def run(
        self,
        hidden: torch.Tensor,
        positions: torch.Tensor,
        valid: torch.Tensor,
        start: int,
        stop: int,
        context: Context | None = None,
        keep: bool = False,
        keys_only_at_top: bool = False,
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """Layers ``[start, stop)`` on ``hidden`` (B, S, H) at rotary ``positions`` (B, S).

        Suffix position j attends to the valid context columns and to suffix positions <= j
        that are ``valid`` (B, S). Returns the output hidden states and, with ``keep``, the
        suffix's keys/values per layer (post-rotary, (B, kv_heads, S, head_dim)); both are zero
        at positions that are not valid. ``keys_only_at_top`` (with ``keep``): the last layer
        computes its keys/values only, and the hidden states returned are its input."""
        import torch
        import torch.nn.functional as F

        batch, length, width = hidden.shape
        cos, sin = self.stack.rotary_emb(hidden, position_ids=positions)
        causal = torch.ones(length, length, dtype=torch.bool, device=hidden.device).tril()
        eye = torch.eye(length, dtype=torch.bool, device=hidden.device)
        own = causal[None] & (valid[:, None, :] | eye[None])
        if context is not None:
            ctx = context.valid[:, None, :].expand(batch, length, -1)
            mask = torch.cat([ctx, own], dim=2)[:, None]
        else:
            mask = own[:, None]
        # Only the attention needs the (batch, length) layout: every projection, norm and MLP
        # runs on the valid positions alone. Ragged batches (responses of 1-4 tokens, keys of
        # 16-32) would otherwise spend a third of the work on padding.
        packed = not bool(valid.all())
        where = valid.reshape(-1).nonzero().squeeze(1) if packed else None
        x = hidden.reshape(batch * length, width)
        if where is not None:
            x = x[where]

        def heads(flat: torch.Tensor) -> torch.Tensor:
            if where is not None:
                flat = flat.new_zeros(batch * length, flat.shape[-1]).index_copy(0, where, flat)
            return flat.view(batch, length, -1, self.head_dim).transpose(1, 2)

        kept_k: list[torch.Tensor] = []
        kept_v: list[torch.Tensor] = []
        for i, layer in enumerate(self.stack.layers[start:stop]):
            attn = layer.self_attn
            normed = layer.input_layernorm(x)
            # at the top with ``keys_only_at_top`` the rest of the layer would only make hidden
            # states nobody reads
            keys_only = keep and keys_only_at_top and i == stop - start - 1
            k, v = heads(attn.k_proj(normed)), heads(attn.v_proj(normed))
            if hasattr(attn, "k_norm"):  # Qwen3-style per-head norms
                k = attn.k_norm(k)
            if keys_only:
                q = k  # a stand-in: rotary acts on q and k independently
            else:
                q = heads(attn.q_proj(normed))
                if hasattr(attn, "q_norm"):
                    q = attn.q_norm(q)
            q, k = self._rope(q, k, cos, sin)
            if keep:
                kept_k.append(k.detach())
                kept_v.append(v.detach())
            if keys_only:
                break
            if context is not None:
                k = torch.cat([context.keys[i].to(k.dtype), k], dim=2)
                v = torch.cat([context.values[i].to(v.dtype), v], dim=2)
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, scale=attn.scaling, enable_gqa=self.kv_heads != self.heads
            )
            out = out.transpose(1, 2).reshape(batch * length, -1)
            if where is not None:
                out = out[where]
            x = x + attn.o_proj(out)
            x = x + layer.mlp(layer.post_attention_layernorm(x))
        if where is not None:
            x = x.new_zeros(batch * length, width).index_copy(0, where, x)
        hidden = x.view(batch, length, width)
        return hidden, kept_k, kept_v


class Stream:
    """A batch of sequences run through the whole model, extendable one token at a time.

    Keeps every layer's keys/values (so appending a token costs one position, not a new
    prefill), the last-layer hidden states, and, when ``capture`` is set, the hidden states
    entering layer ``capture``. Rows are right-padded; rotary positions count real tokens only.
    """

    def __init__(
        self,
        decoder: Decoder,
        rows: list[list[int]],
        pad: int,
        capture: int | None = None,
    ) -> None:
        import torch

        self.decoder = decoder
        self.capture = capture
        device = next(decoder.model.parameters()).device
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        valid = torch.zeros((len(rows), width), dtype=torch.bool)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            valid[i, : len(row)] = True
        ids, valid = ids.to(device), valid.to(device)
        positions = torch.arange(width, device=device)[None].expand(len(rows), -1)
        self.lengths = torch.tensor([len(r) for r in rows], device=device)
        self.next_position = self.lengths.clone()
        self.columns = torch.arange(width, device=device)[None].expand(len(rows), -1)
        self.columns = torch.where(valid, self.columns, -1)  # real position of each column
        hidden, keys, values, captured = self._layers(decoder.embed(ids), positions, valid, None)
        self.context = Context(keys, values, valid)
        self.hidden = hidden
        self.captured = captured

    def _layers(
        self,
        hidden: torch.Tensor,
        positions: torch.Tensor,
        valid: torch.Tensor,
        context: Context | None,
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor], torch.Tensor | None]:
        split = self.capture if self.capture is not None else 0
        top = self.decoder.num_layers
        ctx_low = ctx_high = None
        if context is not None:
            ctx_low = Context(context.keys[:split], context.values[:split], context.valid)
            ctx_high = Context(context.keys[split:], context.values[split:], context.valid)
        low, k1, v1 = self.decoder.run(hidden, positions, valid, 0, split, ctx_low, keep=True)
        out, k2, v2 = self.decoder.run(low, positions, valid, split, top, ctx_high, keep=True)
        return out, k1 + k2, v1 + v2, low if self.capture is not None else None

    def last_logits(self) -> torch.Tensor:
        """Next-token logits after the last token of every row (B, vocab)."""
        import torch

        last = (self.columns == (self.next_position - 1)[:, None]).float().argmax(dim=1)
        rows = torch.arange(self.hidden.shape[0], device=self.hidden.device)
        return self.decoder.logits(self.hidden[rows, last])

    def append(self, tokens: torch.Tensor) -> None:
        """Feed one more token per row (B,)."""
        import torch

        ids = tokens.to(self.hidden.device).view(-1, 1)
        positions = self.next_position[:, None]
        valid = torch.ones_like(ids, dtype=torch.bool)
        hidden, keys, values, captured = self._layers(
            self.decoder.embed(ids), positions, valid, self.context
        )
        self.context = self.context.extend(keys, values, valid)
        self.hidden = torch.cat([self.hidden, hidden], dim=1)
        if captured is not None and self.captured is not None:
            self.captured = torch.cat([self.captured, captured], dim=1)
        self.columns = torch.cat([self.columns, positions], dim=1)
        self.next_position = self.next_position + 1

    def take(
        self, row: int, count: int
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """The first ``count`` positions of ``row``: hidden states entering layer ``capture``
        (count, H), keys and values of layers ``capture..`` (count, kv_heads * head_dim) each,
        and last-layer hidden states (count, H)."""
        import torch

        if self.captured is None or self.capture is None:
            raise ValueError("this stream was built without capture")
        order = self.columns[row]
        picks = torch.stack([(order == p).nonzero()[0, 0] for p in range(count)])
        keys = [
            k[row, :, picks].transpose(0, 1).reshape(count, -1)
            for k in self.context.keys[self.capture :]
        ]
        values = [
            v[row, :, picks].transpose(0, 1).reshape(count, -1)
            for v in self.context.values[self.capture :]
        ]
        return self.captured[row, picks], keys, values, self.hidden[row, picks]


def sample_continuations(
    decoder: Decoder,
    rows: list[list[int]],
    steps: int,
    pad: int,
    generator: torch.Generator,
    temperature: float = 1.0,
    top_p: float = 0.95,
    candidates: int = 256,
) -> list[list[int]]:
    """``steps`` sampled tokens after each row (nucleus sampling within the top ``candidates``
    tokens: the same distribution as full top-p whenever the nucleus fits in them)."""
    import torch

    stream = Stream(decoder, rows, pad)
    out: list[list[int]] = [[] for _ in rows]
    with torch.no_grad():
        for step in range(steps):
            logits = stream.last_logits() / temperature
            values, indices = logits.topk(min(candidates, logits.shape[-1]), dim=-1)
            probs = torch.softmax(values, dim=-1)
            cumulative = probs.cumsum(-1)
            probs = torch.where(cumulative - probs < top_p, probs, torch.zeros_like(probs))
            choice = torch.multinomial(probs / probs.sum(-1, keepdim=True), 1, generator=generator)
            tokens = indices.gather(1, choice)[:, 0]
            for i, t in enumerate(tokens.tolist()):
                out[i].append(int(t))
            if step + 1 < steps:
                stream.append(tokens)
    return out
