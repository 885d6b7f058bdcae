"""nf.data.Vocab: ordering, min_freq/max_size, unknown tokens, round trips, files, errors."""
from collections import Counter

import numpy as np
import pytest

import nnforge as nf
from nnforge.data import Vocab

CORPUS = [["the", "cat", "sat"], ["the", "dog", "sat"], ["a", "cat"], ["the"]]


def test_build_orders_specials_then_frequency_then_alphabet():
    v = Vocab.build(CORPUS)
    assert v.itos == ["<pad>", "<unk>", "the", "cat", "sat", "a", "dog"]
    assert v.pad_id == 0 and v.unk_id == 1 and len(v) == 7
    assert v.stoi["cat"] == 3 and "dog" in v and "bird" not in v
    assert Vocab.build(Counter({"b": 2, "a": 2, "c": 5})).itos[2:] == ["c", "a", "b"]


def test_min_freq_and_max_size():
    assert Vocab.build(CORPUS, min_freq=2).itos[2:] == ["the", "cat", "sat"]
    assert Vocab.build(CORPUS, max_size=2).itos[2:] == ["the", "cat"]
    v = Vocab.build(CORPUS, specials=("<pad>", "<unk>", "<bos>", "<eos>"))
    assert v.itos[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"] and v.id_of("<eos>") == 3


def test_encode_decode_round_trip_and_unknowns():
    v = Vocab.build(CORPUS)
    ids = v.encode(["the", "bird", "dog"])
    assert ids.dtype == np.int64 and ids.tolist() == [2, 1, 6]
    assert v.decode(ids) == ["the", "<unk>", "dog"]
    assert v.decode(nf.tensor([0, 2, 0]), skip_specials=True) == ["the"]
    strict = Vocab.build(CORPUS, specials=(), unk_token=None)
    assert strict.decode(strict.encode(["a", "the"])) == ["a", "the"]
    with pytest.raises(KeyError, match="'bird' is not in the vocabulary"):
        strict.encode(["bird"])


def test_ids_feed_an_embedding_with_pad_as_padding_idx():
    v = Vocab.build(CORPUS)
    emb = nf.nn.Embedding(len(v), 4, padding_idx=v.pad_id)
    x = nf.from_numpy(np.stack([v.encode(["the", "cat"]), v.encode(["a", "<pad>"])]))
    out = emb(x)
    assert tuple(out.shape) == (2, 2, 4)
    np.testing.assert_array_equal(out[1, 1].detach().numpy(), np.zeros(4, np.float32))


def test_save_load(tmp_path):
    v = Vocab.build(CORPUS, specials=("<pad>", "<unk>", "<bos>"))
    path = tmp_path / "vocab.json"
    v.save(path)
    w = Vocab.load(path)
    assert w.itos == v.itos and w.specials == v.specials and w.unk_token == v.unk_token
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a saved Vocab"):
        Vocab.load(tmp_path / "bad.json")


def test_errors():
    with pytest.raises(ValueError, match="appears twice"):
        Vocab(["a", "b", "a"])
    with pytest.raises(ValueError, match="unk_token '<unk>' is not among"):
        Vocab(["a"], specials=("<pad>",))
    with pytest.raises(TypeError, match="got a string"):
        Vocab.build(["the cat"])
    with pytest.raises(TypeError, match="got a string"):
        Vocab.build(CORPUS).encode("the")
    with pytest.raises(IndexError, match="id 9 is out of range"):
        Vocab.build(CORPUS).decode([9])
    with pytest.raises(ValueError, match="min_freq"):
        Vocab.build(CORPUS, min_freq=0)
