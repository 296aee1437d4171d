"""Language codes and corpus readers: layouts, formats, and one test per error message."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lslo.data.corpus import CorpusError, MultiWayCorpus, load_corpus, read_flores, read_jsonl, read_tsv
from lslo.tuner.langcodes import (
    LANGUAGES,
    M2M100_LANGUAGES,
    UnknownLanguageError,
    to_flores101,
    to_flores200,
    to_short,
)

PAPER_12 = {
    "en": ("eng", "eng_Latn"), "fr": ("fra", "fra_Latn"), "it": ("ita", "ita_Latn"), "de": ("deu", "deu_Latn"),
    "nl": ("nld", "nld_Latn"), "zh": ("zho_simpl", "zho_Hans"), "ja": ("jpn", "jpn_Jpan"), "ko": ("kor", "kor_Hang"),
    "oc": ("oci", "oci_Latn"), "or": ("ory", "ory_Orya"), "sd": ("snd", "snd_Arab"), "wo": ("wol", "wol_Latn"),
}  # fmt: skip

SENTS = {
    "en": ["Hello.", "How are you?", "Good night."],
    "fr": ["Bonjour.", "Comment ça va ?", "Bonne nuit."],
    "oc": ["Bonjorn.", "Cossí va ?", "Bona nuèch."],
}


def write_lines(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def make_flores(root: Path, version: int = 101, split: str = "dev", sents=SENTS) -> Path:
    dataset = root / f"flores{version}_dataset"
    for short, lines in sents.items():
        code = to_flores101(short) if version == 101 else to_flores200(short)
        write_lines(dataset / split / f"{code}.{split}", lines)
    return dataset


def one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


# ------------------------------------------------------------------ language codes


def test_language_codes_three_forms_and_paper_languages():
    for short, (f101, f200) in PAPER_12.items():
        assert to_short(short) == to_short(f101) == to_short(f200) == to_short(f200.lower()) == short
        assert to_flores101(short) == f101 and to_flores200(short) == f200
        assert to_flores101(f200) == f101  # any form in, any form out
    assert to_short("__oc__") == "oc" and to_short("zho_trad") == "zh_hant" and to_short("swh") == "sw"
    assert to_short("nya") == "ny" and to_short("hau_Latn") == "ha" and to_short("yor") == "yo"


def test_language_table_covers_m2m100_and_flores101():
    shorts = [lang.short for lang in LANGUAGES]
    assert len(shorts) == len(set(shorts))
    assert set(M2M100_LANGUAGES) <= set(shorts) and len(M2M100_LANGUAGES) == 100
    assert sum(lang.flores101 is not None for lang in LANGUAGES) == 102  # 101 languages, Chinese twice
    assert all("-" not in s for s in shorts)  # '-' separates directions
    for lang in LANGUAGES:
        if lang.flores200:
            assert re.fullmatch(r"[a-z]{3}_[A-Z][a-z]{3}", lang.flores200)


def test_unknown_language_code_is_one_line_value_error():
    with pytest.raises(UnknownLanguageError) as err:
        to_short("xx_Yyyy")
    assert "'xx_Yyyy'" in one_line(err)
    assert isinstance(err.value, ValueError)
    with pytest.raises(UnknownLanguageError, match="not part of FLORES-101"):
        to_flores101("gd")
    with pytest.raises(UnknownLanguageError, match="not part of FLORES-200"):
        to_flores200("br")


# ------------------------------------------------------------------ FLORES readers


def test_read_flores101_layout_from_parent_dir(tmp_path):
    make_flores(tmp_path, 101)
    corpus = read_flores(tmp_path, "dev", ["eng", "fr", "oci_Latn"])
    assert corpus.languages == ["en", "fr", "oc"]
    assert corpus.ids == ["1", "2", "3"] and len(corpus) == 3
    assert corpus.texts["fr"][1] == "Comment ça va ?"
    every = read_flores(tmp_path / "flores101_dataset", "dev")  # the dataset dir itself, all files
    assert sorted(every.languages) == ["en", "fr", "oc"]


def test_read_flores200_layout_and_load_corpus(tmp_path):
    dataset = make_flores(tmp_path, 200, split="devtest")
    corpus = load_corpus(dataset, split="devtest", languages=["oc", "en"])
    assert corpus.languages == ["oc", "en"] and corpus.texts["oc"][2] == "Bona nuèch."
    with pytest.raises(CorpusError, match="needs split="):
        load_corpus(dataset)


def test_flores_unknown_files_warned_not_silent(tmp_path):
    dataset = make_flores(tmp_path, 200)
    write_lines(dataset / "dev" / "ace_Arab.dev", ["a", "b", "c"])
    with pytest.warns(UserWarning, match="ace_Arab"):
        corpus = read_flores(dataset, "dev")
    assert sorted(corpus.languages) == ["en", "fr", "oc"]


def test_line_separator_characters_do_not_split_segments(tmp_path):
    sents = {"en": ["a\u2028b", "c"], "fr": ["d", "e\x85f"]}
    corpus = read_flores(make_flores(tmp_path, 101, sents=sents), "dev")
    assert len(corpus) == 2 and corpus.texts["en"][0] == "a\u2028b"


def test_error_line_count_mismatch_names_both_files(tmp_path):
    dataset = make_flores(tmp_path, 101)
    write_lines(dataset / "dev" / "oci.dev", ["only", "two"])
    with pytest.raises(CorpusError) as err:
        read_flores(dataset, "dev", ["en", "oc"])
    msg = one_line(err)
    assert "eng.dev has 3 lines" in msg and "oci.dev has 2" in msg


def test_error_missing_language_file_names_expected_path(tmp_path):
    dataset = make_flores(tmp_path, 101)
    with pytest.raises(CorpusError) as err:
        read_flores(dataset, "dev", ["en", "wo"])
    assert str(dataset / "dev" / "wol.dev") in one_line(err)


def test_error_unknown_language_code(tmp_path):
    dataset = make_flores(tmp_path, 101)
    with pytest.raises(CorpusError) as err:
        read_flores(dataset, "dev", ["en", "klingon"])
    assert "'klingon'" in one_line(err) and str(dataset) in str(err.value)


def test_error_empty_segment_names_file_and_line(tmp_path):
    dataset = make_flores(tmp_path, 101)
    write_lines(dataset / "dev" / "fra.dev", ["Bonjour.", "  ", "Bonne nuit."])
    with pytest.raises(CorpusError) as err:
        read_flores(dataset, "dev")
    assert f"{dataset / 'dev' / 'fra.dev'}:2: empty segment" in one_line(err)


def test_empty_drop_policy_drops_in_all_languages_with_warning(tmp_path):
    dataset = make_flores(tmp_path, 101)
    write_lines(dataset / "dev" / "fra.dev", ["Bonjour.", "", "Bonne nuit."])
    with pytest.warns(UserWarning, match=r"dev: dropped 1 of 3 segments"):
        corpus = read_flores(dataset, "dev", ["en", "fr", "oc"], empty="drop")
    assert corpus.ids == ["1", "3"]
    assert corpus.texts["en"] == ["Hello.", "Good night."] and corpus.texts["oc"] == [
        "Bonjorn.",
        "Bona nuèch.",
    ]


def test_error_non_utf8_names_file_and_line(tmp_path):
    dataset = make_flores(tmp_path, 101)
    (dataset / "dev" / "oci.dev").write_bytes(b"ok\nbad \xff\xfe here\nok\n")
    with pytest.raises(CorpusError) as err:
        read_flores(dataset, "dev")
    assert f"{dataset / 'dev' / 'oci.dev'}:2: not valid UTF-8" in one_line(err)


def test_error_no_flores_dir(tmp_path):
    with pytest.raises(CorpusError, match="no FLORES 'dev' directory"):
        read_flores(tmp_path, "dev")
    with pytest.raises(CorpusError, match="unknown FLORES split"):
        read_flores(tmp_path, "test")


# ------------------------------------------------------------------ TSV / JSONL


def test_read_tsv(tmp_path):
    path = write_lines(
        tmp_path / "c.tsv", ["id\teng\tfra_Latn", 's1\tHe said "hi".\tIl a dit « salut ».', "s2\tB\tb"]
    )
    corpus = load_corpus(path)
    assert corpus.languages == ["en", "fr"] and corpus.ids == ["s1", "s2"]
    assert corpus.texts["en"][0] == 'He said "hi".'
    no_id = read_tsv(write_lines(tmp_path / "n.tsv", ["en\tfr", "A\ta"]))
    assert no_id.ids == ["2"]  # file line number


def test_error_tsv_wrong_column_count(tmp_path):
    path = write_lines(tmp_path / "c.tsv", ["id\ten\tfr", "1\tA\ta", "2\tB"])
    with pytest.raises(CorpusError) as err:
        read_tsv(path)
    assert f"{path}:3: expected 3 tab-separated columns" in one_line(err) and "found 2" in str(err.value)


def test_error_tsv_unknown_language_and_duplicate_id(tmp_path):
    bad_header = write_lines(tmp_path / "h.tsv", ["id\ten\txx", "1\tA\ta"])
    with pytest.raises(CorpusError) as err:
        read_tsv(bad_header)
    assert f"{bad_header}:1" in one_line(err) and "'xx'" in str(err.value)
    dup = write_lines(tmp_path / "d.tsv", ["id\ten\tfr", "7\tA\ta", "8\tB\tb", "7\tC\tc"])
    with pytest.raises(CorpusError) as err:
        read_tsv(dup)
    assert f"{dup}:4: duplicate segment id '7' (first on line 2)" in one_line(err)


def test_read_jsonl_with_and_without_ids(tmp_path):
    rows = [{"id": "a", "en": "A", "oci": "á"}, {"id": 5, "en": "B", "oci": "b"}]
    path = write_lines(tmp_path / "c.jsonl", [json.dumps(r, ensure_ascii=False) for r in rows])
    corpus = load_corpus(path, languages=["oc"])
    assert corpus.languages == ["oc"] and corpus.ids == ["a", "5"] and corpus.texts["oc"] == ["á", "b"]
    plain = read_jsonl(
        write_lines(tmp_path / "p.jsonl", ['{"en": "A", "fr": "a"}', "", '{"en": "B", "fr": "b"}'])
    )
    assert plain.ids == ["1", "3"]


def test_error_jsonl_malformed_and_inconsistent(tmp_path):
    path = write_lines(tmp_path / "c.jsonl", ['{"en": "A", "fr": "a"}', '{"en": "B", "fr": }'])
    with pytest.raises(CorpusError) as err:
        read_jsonl(path)
    assert f"{path}:2: malformed JSON" in one_line(err)
    other = write_lines(tmp_path / "o.jsonl", ['{"en": "A", "fr": "a"}', '{"en": "B", "de": "b"}'])
    with pytest.raises(CorpusError, match=r"o\.jsonl:2: languages"):
        read_jsonl(other)
    dup = write_lines(tmp_path / "d.jsonl", ['{"id": 1, "en": "A"}', '{"id": "1", "en": "B"}'])
    with pytest.raises(CorpusError, match=r"d\.jsonl:2: duplicate segment id '1'"):
        read_jsonl(dup)
    empty = write_lines(tmp_path / "e.jsonl", ['{"en": "A", "fr": ""}'])
    with pytest.raises(CorpusError, match=r"e\.jsonl:1: empty segment"):
        read_jsonl(empty)


def test_load_corpus_errors(tmp_path):
    with pytest.raises(CorpusError, match="no such file"):
        load_corpus(tmp_path / "nope.tsv")
    odd = write_lines(tmp_path / "c.txt", ["x"])
    with pytest.raises(CorpusError, match="cannot tell the corpus format"):
        load_corpus(odd)


# ------------------------------------------------------------------ MultiWayCorpus


def small_corpus(n: int) -> MultiWayCorpus:
    ids = [f"s{i}" for i in range(n)]
    return MultiWayCorpus(["en", "fr"], ids, {"en": [f"e{i}" for i in ids], "fr": [f"f{i}" for i in ids]})


def test_subset_select():
    corpus = small_corpus(4)
    assert corpus.subset(["fra"]).languages == ["fr"]
    sel = corpus.select(["s3", "s1"])
    assert sel.ids == ["s3", "s1"] and sel.texts["fr"] == ["fs3", "fs1"]
    with pytest.raises(CorpusError, match="'s9'"):
        corpus.select(["s9"])
    with pytest.raises(CorpusError, match="'de' is not in the corpus"):
        corpus.subset(["de"])
    with pytest.raises(CorpusError, match="duplicate segment id"):
        MultiWayCorpus(["en"], ["a", "a"], {"en": ["x", "y"]})


def test_split_by_ratio_is_by_id_and_stable_when_corpus_grows():
    corpus = small_corpus(400)
    parts = corpus.split_by_ratio({"train": 0.75, "valid": 0.25}, seed=1)
    assert len(parts["train"]) + len(parts["valid"]) == 400
    assert 240 < len(parts["train"]) < 360
    assert not set(parts["train"].ids) & set(parts["valid"].ids)
    assert parts == corpus.split_by_ratio({"train": 3, "valid": 1}, seed=1)  # relative ratios, deterministic
    grown = small_corpus(600).split_by_ratio({"train": 0.75, "valid": 0.25}, seed=1)
    assert set(parts["valid"].ids) <= set(grown["valid"].ids)
    assert set(parts["train"].ids) <= set(grown["train"].ids)
    other = corpus.split_by_ratio({"train": 0.75, "valid": 0.25}, seed=2)
    assert other["valid"].ids != parts["valid"].ids
