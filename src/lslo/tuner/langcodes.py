"""Language codes: our short codes <-> FLORES-101 file codes <-> FLORES-200 codes.

Our *short* code is the one M2M-100 uses (ISO 639-1 where one exists, e.g. ``en``,
``oc``, ``ns``; otherwise ISO 639-3, e.g. ``ast``, ``kea``). The corpus, the
configuration and the routing all speak short codes, so every reader maps the
codes it finds (``eng``, ``eng_Latn``, ``__en__``) through :func:`to_short` once.

Notes on a few non-obvious entries:

* FLORES-101 has one file per language; some macro-languages are represented by a
  specific variety in FLORES-200 (``ar`` -> ``arb_Arab``, ``fa`` -> ``pes_Arab``,
  ``lv`` -> ``lvs_Latn``, ``ms`` -> ``zsm_Latn``, ``mn`` -> ``khk_Cyrl``,
  ``om`` -> ``gaz_Latn``, ``ps`` -> ``pbt_Arab``, ``uz`` -> ``uzn_Latn``,
  ``ff`` -> ``fuv_Latn``, ``mg`` -> ``plt_Latn``, ``sq`` -> ``als_Latn``,
  ``yi`` -> ``ydd_Hebr``).
* Traditional Chinese has no M2M-100 code; we call it ``zh_hant`` (FLORES-101
  ``zho_trad``, FLORES-200 ``zho_Hant``). Short codes never contain ``-``, which
  separates source and target in direction names such as ``en-fr``.
* Some M2M-100 languages are not in FLORES-101 (``ba br fy gd ht ilo mg si sq ss
  su tn yi``) and two are in neither FLORES release (``br``, ``fy``); asking for
  those codes raises :class:`UnknownLanguageError` with that reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from lslo.errors import LSLoError


class UnknownLanguageError(LSLoError):
    """A language code is not in the table, or has no code in the requested scheme."""


class Language(NamedTuple):
    short: str
    flores101: str | None
    flores200: str | None
    name: str


# fmt: off
LANGUAGES: tuple[Language, ...] = (
    Language("af", "afr", "afr_Latn", "Afrikaans"),
    Language("am", "amh", "amh_Ethi", "Amharic"),
    Language("ar", "ara", "arb_Arab", "Arabic"),
    Language("as", "asm", "asm_Beng", "Assamese"),
    Language("ast", "ast", "ast_Latn", "Asturian"),
    Language("az", "azj", "azj_Latn", "Azerbaijani"),
    Language("ba", None, "bak_Cyrl", "Bashkir"),
    Language("be", "bel", "bel_Cyrl", "Belarusian"),
    Language("bg", "bul", "bul_Cyrl", "Bulgarian"),
    Language("bn", "ben", "ben_Beng", "Bengali"),
    Language("br", None, None, "Breton"),
    Language("bs", "bos", "bos_Latn", "Bosnian"),
    Language("ca", "cat", "cat_Latn", "Catalan"),
    Language("ceb", "ceb", "ceb_Latn", "Cebuano"),
    Language("ckb", "ckb", "ckb_Arab", "Central Kurdish (Sorani)"),
    Language("cs", "ces", "ces_Latn", "Czech"),
    Language("cy", "cym", "cym_Latn", "Welsh"),
    Language("da", "dan", "dan_Latn", "Danish"),
    Language("de", "deu", "deu_Latn", "German"),
    Language("el", "ell", "ell_Grek", "Greek"),
    Language("en", "eng", "eng_Latn", "English"),
    Language("es", "spa", "spa_Latn", "Spanish"),
    Language("et", "est", "est_Latn", "Estonian"),
    Language("fa", "fas", "pes_Arab", "Persian"),
    Language("ff", "ful", "fuv_Latn", "Fula"),
    Language("fi", "fin", "fin_Latn", "Finnish"),
    Language("fr", "fra", "fra_Latn", "French"),
    Language("fy", None, None, "Western Frisian"),
    Language("ga", "gle", "gle_Latn", "Irish"),
    Language("gd", None, "gla_Latn", "Scottish Gaelic"),
    Language("gl", "glg", "glg_Latn", "Galician"),
    Language("gu", "guj", "guj_Gujr", "Gujarati"),
    Language("ha", "hau", "hau_Latn", "Hausa"),
    Language("he", "heb", "heb_Hebr", "Hebrew"),
    Language("hi", "hin", "hin_Deva", "Hindi"),
    Language("hr", "hrv", "hrv_Latn", "Croatian"),
    Language("ht", None, "hat_Latn", "Haitian Creole"),
    Language("hu", "hun", "hun_Latn", "Hungarian"),
    Language("hy", "hye", "hye_Armn", "Armenian"),
    Language("id", "ind", "ind_Latn", "Indonesian"),
    Language("ig", "ibo", "ibo_Latn", "Igbo"),
    Language("ilo", None, "ilo_Latn", "Iloko"),
    Language("is", "isl", "isl_Latn", "Icelandic"),
    Language("it", "ita", "ita_Latn", "Italian"),
    Language("ja", "jpn", "jpn_Jpan", "Japanese"),
    Language("jv", "jav", "jav_Latn", "Javanese"),
    Language("ka", "kat", "kat_Geor", "Georgian"),
    Language("kam", "kam", "kam_Latn", "Kamba"),
    Language("kea", "kea", "kea_Latn", "Kabuverdianu"),
    Language("kk", "kaz", "kaz_Cyrl", "Kazakh"),
    Language("km", "khm", "khm_Khmr", "Khmer"),
    Language("kn", "kan", "kan_Knda", "Kannada"),
    Language("ko", "kor", "kor_Hang", "Korean"),
    Language("ky", "kir", "kir_Cyrl", "Kyrgyz"),
    Language("lb", "ltz", "ltz_Latn", "Luxembourgish"),
    Language("lg", "lug", "lug_Latn", "Ganda"),
    Language("ln", "lin", "lin_Latn", "Lingala"),
    Language("lo", "lao", "lao_Laoo", "Lao"),
    Language("lt", "lit", "lit_Latn", "Lithuanian"),
    Language("luo", "luo", "luo_Latn", "Luo"),
    Language("lv", "lav", "lvs_Latn", "Latvian"),
    Language("mg", None, "plt_Latn", "Malagasy"),
    Language("mi", "mri", "mri_Latn", "Maori"),
    Language("mk", "mkd", "mkd_Cyrl", "Macedonian"),
    Language("ml", "mal", "mal_Mlym", "Malayalam"),
    Language("mn", "mon", "khk_Cyrl", "Mongolian"),
    Language("mr", "mar", "mar_Deva", "Marathi"),
    Language("ms", "msa", "zsm_Latn", "Malay"),
    Language("mt", "mlt", "mlt_Latn", "Maltese"),
    Language("my", "mya", "mya_Mymr", "Burmese"),
    Language("ne", "npi", "npi_Deva", "Nepali"),
    Language("nl", "nld", "nld_Latn", "Dutch"),
    Language("no", "nob", "nob_Latn", "Norwegian Bokmal"),
    Language("ns", "nso", "nso_Latn", "Northern Sotho"),
    Language("ny", "nya", "nya_Latn", "Nyanja"),
    Language("oc", "oci", "oci_Latn", "Occitan"),
    Language("om", "orm", "gaz_Latn", "Oromo"),
    Language("or", "ory", "ory_Orya", "Oriya"),
    Language("pa", "pan", "pan_Guru", "Punjabi"),
    Language("pl", "pol", "pol_Latn", "Polish"),
    Language("ps", "pus", "pbt_Arab", "Pashto"),
    Language("pt", "por", "por_Latn", "Portuguese"),
    Language("ro", "ron", "ron_Latn", "Romanian"),
    Language("ru", "rus", "rus_Cyrl", "Russian"),
    Language("sd", "snd", "snd_Arab", "Sindhi"),
    Language("si", None, "sin_Sinh", "Sinhala"),
    Language("sk", "slk", "slk_Latn", "Slovak"),
    Language("sl", "slv", "slv_Latn", "Slovenian"),
    Language("sn", "sna", "sna_Latn", "Shona"),
    Language("so", "som", "som_Latn", "Somali"),
    Language("sq", None, "als_Latn", "Albanian"),
    Language("sr", "srp", "srp_Cyrl", "Serbian"),
    Language("ss", None, "ssw_Latn", "Swati"),
    Language("su", None, "sun_Latn", "Sundanese"),
    Language("sv", "swe", "swe_Latn", "Swedish"),
    Language("sw", "swh", "swh_Latn", "Swahili"),
    Language("ta", "tam", "tam_Taml", "Tamil"),
    Language("te", "tel", "tel_Telu", "Telugu"),
    Language("tg", "tgk", "tgk_Cyrl", "Tajik"),
    Language("th", "tha", "tha_Thai", "Thai"),
    Language("tl", "tgl", "tgl_Latn", "Tagalog (Filipino)"),
    Language("tn", None, "tsn_Latn", "Tswana"),
    Language("tr", "tur", "tur_Latn", "Turkish"),
    Language("uk", "ukr", "ukr_Cyrl", "Ukrainian"),
    Language("umb", "umb", "umb_Latn", "Umbundu"),
    Language("ur", "urd", "urd_Arab", "Urdu"),
    Language("uz", "uzb", "uzn_Latn", "Uzbek"),
    Language("vi", "vie", "vie_Latn", "Vietnamese"),
    Language("wo", "wol", "wol_Latn", "Wolof"),
    Language("xh", "xho", "xho_Latn", "Xhosa"),
    Language("yi", None, "ydd_Hebr", "Yiddish"),
    Language("yo", "yor", "yor_Latn", "Yoruba"),
    Language("zh", "zho_simpl", "zho_Hans", "Chinese (Simplified)"),
    Language("zh_hant", "zho_trad", "zho_Hant", "Chinese (Traditional)"),
    Language("zu", "zul", "zul_Latn", "Zulu"),
)

#: The 100 language codes of M2M-100 (facebook/m2m100_418M, m2m100_1.2B).
M2M100_LANGUAGES: tuple[str, ...] = tuple(
    "af am ar ast az ba be bg bn br bs ca ceb cs cy da de el en es et fa ff fi fr fy ga gd gl gu "
    "ha he hi hr ht hu hy id ig ilo is it ja jv ka kk km kn ko lb lg ln lo lt lv mg mk ml mn mr "
    "ms my ne nl no ns oc or pa pl ps pt ro ru sd si sk sl so sq sr ss su sv sw ta th tl tn tr uk "
    "ur uz vi wo xh yi yo zh zu".split()
)

# Other spellings people write (deprecated ISO 639-1 codes, BCP-47-ish Chinese tags).
_ALIASES: dict[str, str] = {
    "nb": "no", "iw": "he", "in": "id", "ji": "yi", "fil": "tl", "zho": "zh",
    "zh-hans": "zh", "zh_hans": "zh", "zh-cn": "zh", "zh-hant": "zh_hant", "zh-tw": "zh_hant",
}
# fmt: on

_BY_SHORT: dict[str, Language] = {lang.short: lang for lang in LANGUAGES}


def _build_lookup() -> dict[str, str]:
    """Lower-cased code of any form -> short code; fails at import on an ambiguous table."""
    lookup: dict[str, str] = {}
    for lang in LANGUAGES:
        for code in (lang.short, lang.flores101, lang.flores200):
            if code is None:
                continue
            key = code.lower()
            if lookup.setdefault(key, lang.short) != lang.short:  # pragma: no cover - table bug
                raise AssertionError(
                    f"language code {code!r} maps to both {lookup[key]!r} and {lang.short!r}"
                )
    for alias, short in _ALIASES.items():
        if alias in lookup or short not in _BY_SHORT:  # pragma: no cover - table bug
            raise AssertionError(f"bad alias {alias!r} -> {short!r}")
        lookup[alias] = short
    return lookup


_LOOKUP = _build_lookup()


def to_short(code: str) -> str:
    """Our short code for ``code`` given as short, FLORES-101, FLORES-200 or ``__xx__`` token form."""
    if not isinstance(code, str):
        raise UnknownLanguageError(f"language code must be a string, got {type(code).__name__} {code!r}")
    key = code.strip()
    if len(key) > 4 and key.startswith("__") and key.endswith("__"):
        key = key[2:-2]
    short = _LOOKUP.get(key.lower())
    if short is None:
        raise UnknownLanguageError(
            f"unknown language code {code!r} (expected an M2M-100/ISO 639-1 code like 'en', "
            f"a FLORES-101 code like 'eng' or a FLORES-200 code like 'eng_Latn')"
        )
    return short


def to_flores101(code: str) -> str:
    """FLORES-101 file code (``eng``, ``zho_simpl``) of a language given in any form."""
    lang = _BY_SHORT[to_short(code)]
    if lang.flores101 is None:
        raise UnknownLanguageError(f"language {code!r} ({lang.name}) is not part of FLORES-101")
    return lang.flores101


def to_flores200(code: str) -> str:
    """FLORES-200 / NLLB code (``eng_Latn``, ``zho_Hans``) of a language given in any form."""
    lang = _BY_SHORT[to_short(code)]
    if lang.flores200 is None:
        raise UnknownLanguageError(f"language {code!r} ({lang.name}) is not part of FLORES-200")
    return lang.flores200


def language_name(code: str) -> str:
    """English name of a language given in any form (for reports and error messages)."""
    return _BY_SHORT[to_short(code)].name


def is_known(code: str) -> bool:
    """Whether :func:`to_short` accepts ``code``."""
    try:
        to_short(code)
    except UnknownLanguageError:
        return False
    return True


def resolve_code(code: str, codes: Sequence[str]) -> str:
    """The code in ``codes`` (a run's own codes) for ``code`` given in that form, FLORES-101/200 or ``__xx__``.

    Raises :class:`UnknownLanguageError` naming the accepted codes when none matches.
    """
    if isinstance(code, str) and code in codes:
        return code
    try:
        short = to_short(code)
    except UnknownLanguageError:
        short = None
    if short is not None:
        for c in codes:  # the run may name its languages in any accepted form
            if c == short or (is_known(c) and to_short(c) == short):
                return c
    raise UnknownLanguageError(f"language {code!r} is not one of the run's languages ({', '.join(codes)})")
