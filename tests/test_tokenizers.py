"""Character and byte-level BPE tokenizers: training by hand on a tiny corpus,
round trips on arbitrary Unicode, special tokens, files, errors."""
import numpy as np
import pytest

import nnforge as nf
from nnforge.data.tokenizers import (DEFAULT_SPECIALS, ByteBPETokenizer, CharTokenizer,
                                     _PIECES, load_tokenizer)

SAMPLES = ["", "a", "héllo wörld", "日本語のテキスト", "tabs\t\tand\nnew  lines  ", "x_y__z 1234 ²",
           "emoji 🙂🙂!", "  leading and trailing  ", "can't won't -- ok?!", "<mask> literal"]


def _random_text(rng, n):
    pool = list("abcdefghij ABC,.!?'\n\t0123") + ["é", "ß", "日", "🙂", "_", "  "]
    return "".join(rng.choice(pool, size=n))


def test_bpe_learns_the_most_frequent_pair_first_by_hand():
    tok = ByteBPETokenizer.train("aaab", vocab_size=258, specials=(), min_frequency=1)
    # pairs: (a, a) twice, (a, b) once -> merge 256 = aa; then (aa, a) and (a, b) tie
    # at one and the smaller ids win: 257 = ab.
    assert tok.merges == [(97, 97), (97, 98)]
    assert tok.encode("aaab") == [256, 257]
    assert tok.token_bytes(257) == b"ab"
    # min_frequency=2 (the default) stops after the first merge
    assert ByteBPETokenizer.train("aaab", 300, specials=()).merges == [(97, 97)]


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_round_trip(kind):
    rng = np.random.default_rng(0)
    corpus = " ".join(SAMPLES) + _random_text(rng, 3000)
    tok = (CharTokenizer.train(corpus) if kind == "char"
           else ByteBPETokenizer.train(corpus, vocab_size=400))
    for text in SAMPLES + [_random_text(rng, 200) for _ in range(20)]:
        ids = tok.encode(text)
        assert all(len(tok.specials) <= i < tok.vocab_size for i in ids)
        assert tok.decode(ids) == text


def test_bpe_on_shakespeare_compresses_and_keeps_tokens_inside_words():
    from nnforge.data.datasets import tinyshakespeare
    text = tinyshakespeare("train")[:200_000]
    tok = ByteBPETokenizer.train(text, vocab_size=600)
    assert tok.vocab_size == 600
    ids = tok.encode(text[:20_000])
    assert len(ids) < 0.6 * len(text[:20_000].encode())
    assert tok.decode(ids) == text[:20_000]
    for i in range(tok.offset + 256, tok.vocab_size):
        piece = tok.token_bytes(i).decode("utf-8")
        assert _PIECES.findall(piece) == [piece]     # a merge never spans two pieces
    assert ByteBPETokenizer.train(text, vocab_size=600).merges == tok.merges   # deterministic


def test_char_tokenizer_unknowns_and_ids():
    tok = CharTokenizer.train("hello")
    assert tok.specials == list(DEFAULT_SPECIALS) + ["<unk>"]
    assert tok.vocab_size == 6 + 4
    ids = tok.encode("hex")
    assert ids[2] == tok.special_id("<unk>")
    assert tok.decode(ids) == "he" and tok.decode(ids, skip_specials=False) == "he<unk>"


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_special_tokens(kind):
    tok = (CharTokenizer.train("some text <>") if kind == "char"
           else ByteBPETokenizer.train("some text " * 10, vocab_size=300))
    assert (tok.pad_id, tok.bos_id, tok.eos_id, tok.mask_id, tok.cls_id) == (0, 1, 2, 3, 4)
    ids = tok.encode("text", add_bos=True, add_eos=True)
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
    assert tok.decode(ids) == "text"
    assert tok.decode(ids, skip_specials=False) == "<bos>text<eos>"
    with_mask = tok.encode("some <mask> text", allow_specials=True)
    assert tok.mask_id in with_mask
    assert tok.decode(with_mask, skip_specials=False) == "some <mask> text"
    if kind == "bpe":   # without allow_specials the characters are ordinary text
        assert tok.mask_id not in tok.encode("some <mask> text")
    custom = ByteBPETokenizer([], specials=("<pad>", "<sep>"))
    assert custom.special_id("<sep>") == 1 and custom.bos_id is None
    with pytest.raises(KeyError, match="not one of the special tokens"):
        custom.encode("x", add_bos=True)


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_save_load(tmp_path, kind):
    corpus = "the quick brown fox jumps over the lazy dog " * 5
    tok = (CharTokenizer.train(corpus, specials=("<pad>", "<unk>", "<bos>")) if kind == "char"
           else ByteBPETokenizer.train(corpus, vocab_size=290))
    path = tmp_path / "tok.json"
    tok.save(path)
    back = load_tokenizer(path)
    assert type(back) is type(tok) and back.vocab_size == tok.vocab_size
    assert back.specials == tok.specials
    assert back.encode(corpus) == tok.encode(corpus)
    (tmp_path / "other.json").write_text('{"type": "wordpiece"}')
    with pytest.raises(ValueError, match="no saved tokenizer"):
        load_tokenizer(tmp_path / "other.json")


def test_ids_as_tensors_and_errors():
    tok = ByteBPETokenizer.train("abc abc abc", vocab_size=270)
    ids = nf.tensor(tok.encode("abc"))
    assert tok.decode(ids) == "abc"
    with pytest.raises(IndexError, match="out of range"):
        tok.decode([tok.vocab_size])
    with pytest.raises(TypeError, match="expected a str"):
        tok.encode(b"abc")
    with pytest.raises(ValueError, match="below the"):
        ByteBPETokenizer.train("abc", vocab_size=100)
    with pytest.raises(ValueError, match="special tokens repeat"):
        CharTokenizer.train("abc", specials=("<pad>", "<pad>"))
    with pytest.raises(ValueError, match="uses an id that no earlier token has"):
        ByteBPETokenizer([(5000, 97)], specials=())
