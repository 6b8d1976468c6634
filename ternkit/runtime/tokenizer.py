"""Text <-> token ids for a model: bytes for ternkit's byte-level models, a Hugging Face `tokenizer.json`
(the `tokenizers` package), or the tokenizer stored in a GGUF file's metadata.

`load_tokenizer(source, model, tokenizer=None)` picks one: an explicit `tokenizer.json` first, then the
GGUF's own vocabulary, then a `tokenizer.json` beside a checkpoint, then bytes when the model's vocabulary
is the 256 byte values. Every tokenizer has a `StreamDecoder` that turns ids into text one id at a time
without ever printing half a UTF-8 character.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from pathlib import Path

from ternkit.errors import TernkitError

# Llama 3's pre-tokenizer split (what GGUF calls `tokenizer.ggml.pre = llama-bpe`); GPT-2's is the default.
_LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
_GGUF_CONTROL = 3   # llama.cpp token type: control (BOS/EOS/...), never printed


class StreamDecoder:
    """Feed ids one at a time; each call returns the text that became complete."""

    def __init__(self, tokenizer: "Tokenizer"):
        self._tok = tokenizer
        self._ids: list[int] = []
        self._emitted = 0

    def __call__(self, token: int) -> str:
        self._ids.append(int(token))
        text = self._tok.decode(self._ids)
        if text.endswith("\ufffd"):   # an unfinished multi-byte character: wait for the next id
            return ""
        new, self._emitted = text[self._emitted:], len(text)
        return new

    def flush(self) -> str:
        """What is still held back at the end (an unfinished character comes out as U+FFFD)."""
        text = self._tok.decode(self._ids)
        new, self._emitted = text[self._emitted:], len(text)
        return new


@dataclass
class Tokenizer:
    """Base: `encode(text) -> ids`, `decode(ids) -> text`, `eos` ids that end a generation."""

    name: str
    vocab_size: int
    eos: frozenset[int] = field(default_factory=frozenset)

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: list[int]) -> str:
        raise NotImplementedError

    def stream(self) -> StreamDecoder:
        return StreamDecoder(self)


class ByteTokenizer(Tokenizer):
    """UTF-8 bytes are the ids (vocabulary 256). NUL ends a generation: the training corpus separates
    its files with a NUL byte, so a byte model emits it where a file would end."""

    def __init__(self):
        super().__init__("bytes (UTF-8)", 256, frozenset({0}))

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: list[int]) -> str:
        return bytes(ids).decode("utf-8", errors="replace")

    def stream(self) -> StreamDecoder:
        return _ByteStream()


class _ByteStream(StreamDecoder):
    """Incremental UTF-8 decoding: linear time however long the generation."""

    def __init__(self):
        self._dec = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def __call__(self, token: int) -> str:
        return self._dec.decode(bytes([int(token)]))

    def flush(self) -> str:
        return self._dec.decode(b"", final=True)


class HFTokenizer(Tokenizer):
    """A `tokenizers.Tokenizer` (from a tokenizer.json, or built from GGUF metadata)."""

    def __init__(self, name: str, tok, eos: frozenset[int] = frozenset(), bos: int | None = None):
        super().__init__(name, tok.get_vocab_size(with_added_tokens=True), eos)
        self._tok, self._bos = tok, bos

    def encode(self, text: str) -> list[int]:
        ids = self._tok.encode(text).ids
        if self._bos is not None and (not ids or ids[0] != self._bos):
            ids = [self._bos, *ids]
        return ids

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(ids, skip_special_tokens=True)


def from_tokenizer_json(path: str | Path) -> HFTokenizer:
    from tokenizers import Tokenizer as HF

    path = Path(path)
    if not path.is_file():
        raise TernkitError(f"{path}: no such tokenizer file (give a Hugging Face tokenizer.json)")
    try:
        tok = HF.from_file(str(path))
    except Exception as exc:  # the tokenizers package raises plain Exception for a bad file
        raise TernkitError(f"{path}: not a readable tokenizer.json ({str(exc).splitlines()[0]})") from None
    eos = {tok.token_to_id(t) for t in ("</s>", "<|end_of_text|>", "<|eot_id|>", "<|endoftext|>")}
    return HFTokenizer(f"tokenizer.json ({path.name})", tok, frozenset(i for i in eos if i is not None))


def from_gguf(path: str | Path) -> HFTokenizer:
    """The byte-level BPE tokenizer a GGUF stores (`tokenizer.ggml.model = gpt2`: GPT-2, Llama 3, and
    the BitNet b1.58 2B4T GGUFs): vocabulary, merges, control tokens, BOS/EOS."""
    import gguf
    from tokenizers import AddedToken, Regex, decoders, models, pre_tokenizers
    from tokenizers import Tokenizer as HF

    path = Path(path)
    try:
        fields = gguf.GGUFReader(path).fields
    except (ValueError, KeyError, IndexError, OSError) as exc:
        raise TernkitError(f"{path}: not a readable GGUF file ({exc})") from None

    def value(key: str, default=None):
        return fields[key].contents() if key in fields else default

    kind = value("tokenizer.ggml.model")
    if kind is None:
        raise TernkitError(f"{path}: the GGUF stores no tokenizer: give --tokenizer tokenizer.json")
    if kind != "gpt2":
        raise TernkitError(f"{path}: GGUF tokenizer model {kind!r} is not supported (ternkit reads byte-level BPE, "
                           "'gpt2'): give the model's tokenizer.json with --tokenizer")
    tokens = value("tokenizer.ggml.tokens")
    merges = [tuple(m.split(" ", 1)) for m in value("tokenizer.ggml.merges", [])]
    tok = HF(models.BPE({t: i for i, t in enumerate(tokens)}, merges, ignore_merges=True))
    pre = value("tokenizer.ggml.pre", "default")
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=pre not in ("llama-bpe", "llama3"))
    tok.pre_tokenizer = (pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(_LLAMA3_SPLIT), "isolated"), byte_level])
                         if pre in ("llama-bpe", "llama3") else byte_level)
    tok.decoder = decoders.ByteLevel()
    types = value("tokenizer.ggml.token_type", [])
    tok.add_special_tokens([AddedToken(tokens[i], special=True) for i, t in enumerate(types) if t == _GGUF_CONTROL])
    bos = value("tokenizer.ggml.bos_token_id")
    eos = value("tokenizer.ggml.eos_token_id")
    eot = value("tokenizer.ggml.eot_token_id")
    add_bos = bool(value("tokenizer.ggml.add_bos_token", bos is not None))
    return HFTokenizer(f"GGUF byte-level BPE ({path.name})", tok, frozenset(int(i) for i in (eos, eot) if i is not None),
                       int(bos) if add_bos and bos is not None else None)


def load_tokenizer(source: str | Path, vocab_size: int, tokenizer: str | Path | None = None) -> Tokenizer:
    """The tokenizer for a model loaded from `source` (see the module doc for the order)."""
    path = Path(str(source))
    if tokenizer is not None:
        tok = from_tokenizer_json(tokenizer)
    elif path.suffix == ".gguf":
        tok = from_gguf(path)
    elif path.suffix in (".safetensors", ".npz") and (path.parent / "tokenizer.json").is_file():
        tok = from_tokenizer_json(path.parent / "tokenizer.json")
    elif vocab_size == 256:
        tok = ByteTokenizer()
    else:
        raise TernkitError(f"model has a {vocab_size:,}-token vocabulary, not bytes: give its tokenizer with "
                           "--tokenizer tokenizer.json")
    if tok.vocab_size > vocab_size:
        raise TernkitError(f"tokenizer {tok.name} has {tok.vocab_size:,} tokens but the model only {vocab_size:,}: "
                           "they do not belong together")
    return tok
