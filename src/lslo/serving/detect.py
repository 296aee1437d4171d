"""Language identification for ``source: "auto"`` and ``POST /detect``, restricted to a run's languages.

Each detector wraps a language-identification library that ships its model inside its wheel
(no download). They are chosen by name through :data:`DETECTORS`; the default is the one that
measured best on the testbed's short UI strings and sentences (``benchmarks/language_id.py``, the
docs' *Serving* results page has the table).

A detector only ever answers with one of the run's languages: the libraries are told the
candidate set when they support it (lingua, langid), and their answers are filtered and
renormalised otherwise (langdetect). Confidences are percentages (0-100), as LibreTranslate's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from lslo.errors import LSLoError

DEFAULT_DETECTOR = "lingua"


class DetectorError(LSLoError):
    """A detector cannot be built: unknown name, library missing, or none of the run's languages known."""


def iso639_1(code: str) -> str:
    """The ISO 639-1 (or 639-3) code a library knows for one of lslo's short codes."""
    return {"zh_hant": "zh"}.get(code, code.split("_")[0])


class Detector:
    """``detect(text)`` -> ``[(code, confidence), ...]``, best first, codes among the run's."""

    name = "?"

    def __init__(self, codes: Sequence[str]):
        self.codes = list(codes)
        self.known: list[str] = []  # the run's codes the library can tell apart
        self.unknown: list[str] = []  # the run's codes it cannot (never detected)

    def detect(self, text: str) -> list[tuple[str, float]]:
        raise NotImplementedError

    def _split_known(self, supported: Callable[[str], bool]) -> None:
        for c in self.codes:
            (self.known if supported(iso639_1(c)) else self.unknown).append(c)
        if not self.known:
            raise DetectorError(f"detector {self.name}: knows none of this run's languages "
                                f"({', '.join(self.codes)}); pick another with --detector")

    def _answer(self, scores: dict[str, float]) -> list[tuple[str, float]]:
        """Library scores by ISO code -> the run's codes, percentages summing to 100, best first."""
        by_code = {c: scores.get(iso639_1(c), 0.0) for c in self.known}
        total = sum(by_code.values())
        if total <= 0:
            return [(self.known[0], 0.0)]
        ranked = sorted(by_code.items(), key=lambda kv: -kv[1])
        return [(c, round(100.0 * v / total, 2)) for c, v in ranked if v > 0]


class LinguaDetector(Detector):
    """lingua-language-detector (n-gram models of 75 languages in the wheel; Rust core)."""

    name = "lingua"

    def __init__(self, codes: Sequence[str], low_accuracy: bool = False):
        super().__init__(codes)
        from lingua import IsoCode639_1, IsoCode639_3, Language, LanguageDetectorBuilder

        def language(iso: str):
            try:
                if len(iso) == 2:
                    return Language.from_iso_code_639_1(IsoCode639_1.from_str(iso))
                return Language.from_iso_code_639_3(IsoCode639_3.from_str(iso))
            except ValueError:
                return None

        self._split_known(lambda iso: language(iso) is not None)
        langs = {language(iso639_1(c)) for c in self.known}
        if len(langs) == 1:  # lingua needs two languages; one candidate is always the answer
            self._detector = None
            return
        builder = LanguageDetectorBuilder.from_languages(*langs)
        if low_accuracy:
            builder = builder.with_low_accuracy_mode()
        # models load on the first detection (about 23 MB per language in high accuracy, 2 in low):
        # a server that never sees "auto" or /detect never pays for them
        self._detector = builder.build()

    def detect(self, text: str) -> list[tuple[str, float]]:
        if self._detector is None:
            return [(self.known[0], 100.0)]
        values = self._detector.compute_language_confidence_values(text)
        return self._answer({v.language.iso_code_639_1.name.lower(): v.value for v in values} |
                            {v.language.iso_code_639_3.name.lower(): v.value for v in values})


class LinguaLowDetector(LinguaDetector):
    """lingua in its low-accuracy mode (trigrams only: faster, less memory)."""

    name = "lingua-low"

    def __init__(self, codes: Sequence[str]):
        super().__init__(codes, low_accuracy=True)


class LangidDetector(Detector):
    """langid.py (a naive Bayes model of 97 languages in the package)."""

    name = "langid"

    def __init__(self, codes: Sequence[str]):
        super().__init__(codes)
        from langid.langid import LanguageIdentifier, model

        self._id = LanguageIdentifier.from_modelstring(model, norm_probs=True)
        supported = set(self._id.nb_classes)
        self._split_known(lambda iso: iso in supported)
        self._id.set_languages(sorted({iso639_1(c) for c in self.known}))

    def detect(self, text: str) -> list[tuple[str, float]]:
        return self._answer(dict(self._id.rank(text)))


class LangdetectDetector(Detector):
    """langdetect (a port of Google's language-detection, 55 languages; seeded, so deterministic)."""

    name = "langdetect"
    _ALIASES = {"zh": "zh-cn"}

    def __init__(self, codes: Sequence[str]):
        super().__init__(codes)
        from langdetect import DetectorFactory, detector_factory

        detector_factory.init_factory()
        self._factory = detector_factory._factory
        DetectorFactory.seed = 0
        supported = set(self._factory.get_lang_list())
        self._split_known(lambda iso: self._ALIASES.get(iso, iso) in supported)

    def detect(self, text: str) -> list[tuple[str, float]]:
        from langdetect.lang_detect_exception import LangDetectException

        d = self._factory.create()
        d.append(text)
        try:
            probs = d.get_probabilities()
        except LangDetectException:  # no letters at all
            return [(self.known[0], 0.0)]
        back = {v: k for k, v in self._ALIASES.items()}
        return self._answer({back.get(p.lang, p.lang): p.prob for p in probs})


DETECTORS: dict[str, type[Detector]] = {
    "lingua": LinguaDetector,
    "lingua-low": LinguaLowDetector,
    "langid": LangidDetector,
    "langdetect": LangdetectDetector,
}
_PACKAGES = {"lingua": "lingua-language-detector", "lingua-low": "lingua-language-detector", "langid": "langid",
             "langdetect": "langdetect"}


def make_detector(name: str, codes: Sequence[str]) -> Detector:
    """The detector called ``name`` over the run's ``codes`` (a one-line error otherwise)."""
    if name not in DETECTORS:
        raise DetectorError(f"detector {name!r}: expected one of {', '.join(DETECTORS)}")
    try:
        return DETECTORS[name](codes)
    except ImportError:
        raise DetectorError(f"detector {name!r} needs the {_PACKAGES[name]} package: pip install "
                            f"{_PACKAGES[name]} (the serve extra includes {_PACKAGES[DEFAULT_DETECTOR]})") from None
