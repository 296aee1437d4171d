"""Shared fixtures: small real tokenizers and models, built once per session and saved to disk."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# one thread per pytest-xdist worker (make test runs two), two when run alone
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)

SENTENCES = {
    "en": ["The cat sleeps on the mat.", "We read books in the library.", "The weather is nice today.",
           "Children play in the park.", "Open the window, please."],
    "fr": ["Le chat dort sur le tapis.", "Nous lisons des livres à la bibliothèque.", "Il fait beau aujourd'hui.",
           "Les enfants jouent dans le parc.", "Ouvre la fenêtre, s'il te plaît."],
    "de": ["Die Katze schläft auf der Matte.", "Wir lesen Bücher in der Bibliothek.", "Das Wetter ist heute schön.",
           "Kinder spielen im Park.", "Öffne bitte das Fenster."],
    "zh": ["猫睡在垫子上。", "我们在图书馆读书。", "今天天气很好。", "孩子们在公园里玩。", "请打开窗户。"],
    "ha": ["Kyanwa tana barci a kan tabarma.", "Muna karanta littattafai a ɗakin karatu.", "Yanayin yana da kyau yau.",
           "Yara suna wasa a wurin shakatawa.", "Don Allah ka buɗe taga."],
    "yo": ["Ológbò ń sùn lórí ẹní.", "A ń ka ìwé ní ilé-ìkàwé.", "Ojú ọjọ́ dára lónìí.",
           "Àwọn ọmọdé ń ṣeré ní ọgbà.", "Jọ̀wọ́ ṣí fèrèsé."],
}
LANGS = ["en", "fr", "de", "zh", "ha", "yo"]
LEVELS = {"en": "high", "fr": "high", "de": "medium", "zh": "medium", "ha": "low", "yo": "low"}


def all_text() -> list[str]:
    return [s for lang in LANGS for s in SENTENCES[lang]]


@pytest.fixture(scope="session")
def m2m_dir(tmp_path_factory):
    """A saved M2M-100-architecture model + M2M100Tokenizer (2+2 layers, d=16)."""
    from lslo.testbed.tiny import build_m2m100_tokenizer, build_tiny_model
    from lslo.tuner.languages import tokenizer_vocab_size

    d = tmp_path_factory.mktemp("m2m100")
    tok = build_m2m100_tokenizer(all_text() * 3, d, vocab_size=200)
    build_tiny_model("m2m100", tokenizer_vocab_size(tok), d, seed=0)
    return d


@pytest.fixture(scope="session")
def nllb_dir(tmp_path_factory):
    from lslo.testbed.tiny import build_nllb_tokenizer, build_tiny_model
    from lslo.tuner.languages import tokenizer_vocab_size

    d = tmp_path_factory.mktemp("nllb")
    tok = build_nllb_tokenizer(all_text() * 3, d, vocab_size=200)
    build_tiny_model("nllb", tokenizer_vocab_size(tok), d, seed=1)
    return d


def lslo_config(**overrides):
    from lslo.tuner.config import LSLoConfig

    data = {"languages": [{"code": c, "level": LEVELS[c]} for c in LANGS]}
    data.update(overrides)
    return LSLoConfig.from_dict(data)


def load_lslo(path, config=None, randomize: bool = True, seed: int = 0):
    """Load base + tokenizer from disk, inject LSLo; give B random values so adapters matter."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from lslo.tuner.model import LSLoModel

    base = AutoModelForSeq2SeqLM.from_pretrained(str(path))
    tok = AutoTokenizer.from_pretrained(str(path))
    model = LSLoModel(base, config or lslo_config(), tok).eval()
    if randomize:
        randomize_adapters(model, seed)
    return model


def randomize_adapters(model, seed: int = 0, std: float = 0.3) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.lslo_modules().values():
            m.lora_BT.copy_(torch.randn(m.lora_BT.shape, generator=g) * std * m.mask_BT)
            m.lora_A.copy_(torch.randn(m.lora_A.shape, generator=g) * std * m.mask_A)


FLORES101 = {"en": "eng", "fr": "fra", "de": "deu", "zh": "zho_simpl", "ha": "hau", "yo": "yor"}


def segments(lang: str, n: int, offset: int = 0) -> list[str]:
    s = SENTENCES[lang]
    return [f"{s[(k + offset) % 5]} {s[((k + offset) // 5 + 1) % 5]}" for k in range(n)]


@pytest.fixture(scope="session")
def flores_dir(tmp_path_factory):
    """A tiny FLORES-101-layout directory: dev (24 segments) and devtest (6 segments)."""
    root = tmp_path_factory.mktemp("flores") / "flores101_dataset"
    for split, n, off in (("dev", 24, 0), ("devtest", 6, 3)):
        (root / split).mkdir(parents=True)
        for lang, code in FLORES101.items():
            (root / split / f"{code}.{split}").write_text("\n".join(segments(lang, n, off)) + "\n", encoding="utf-8")
    return root


def write_run_config(path, model_dir, data_dir, out_dir, method="lslo", langs=("en", "fr", "ha"), pruning=None,
                     **train):
    import yaml

    cfg = {
        "model": str(model_dir),
        "output_dir": str(out_dir),
        "method": method,
        "lora_rank": 4,
        "lslo": {"languages": [{"code": c, "level": LEVELS[c]} for c in langs]},
        "data": {"path": str(data_dir), "valid_ratio": 0.2},
        "train": {"epochs": 2, "max_tokens": 400, "update_freq": 2, "lr": 0.01, "warmup_steps": 2, "seed": 3,
                  "dropout": 0.1, "log_every_steps": 1, "tensorboard": False, **train},
        "eval": {"beam": 2, "max_new_tokens": 8, "batch_size": 8},
    }
    if pruning:
        cfg["pruning"] = {"enabled": True, **pruning}
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path
