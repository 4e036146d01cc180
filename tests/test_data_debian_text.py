"""Debian text readers, on small files in each package's layout (written here), and on the real
packages when ci/fetch_offline_data.sh has fetched them."""
import gzip

import pytest

from shared.data import debian_text as dt

GCIDE_RECORDS = [
    ("Abasia", 'Abasia \\A*ba"si*a\\ ([.a]*b[=a]"zh[i^]*[.a]), n.\n'
               "   [NL.; Gr. 'a- not + ba`sis a step.] (Med.)\n"
               "   Inability to coordinate muscular actions properly in walking.\n   [Webster 1913 Suppl.]\n"),
    ("Abdomen", 'Abdomen \\Ab*do"men\\, n. [L. abdomen: cf. F. abdomen.]\n'
                "   1. (Anat.) The belly, or that part of the body between the\n      thorax and the pelvis.\n"
                "      [1913 Webster]\n\n   2. (Zool.) The posterior section of the body of insects.\n"
                "      [1913 Webster]\n"),
    ("Abate", 'Abate \\A*bate"\\, v. t. [OF. abatre; cf. {Bate}.]\n   1. To beat down; to overthrow. [Obs.]\n'
              "      [1913 Webster]\n"),
    ("Glycin", 'Glycin \\Gly"cin\\, n. (Physiol. Chem.) Same as {Gly*co*coll}; an encyclop[ae]dic [\'e]lan.\n'),
]


def _b64(v: int) -> str:
    digits = ""
    while True:
        digits = dt._B64[v % 64] + digits
        v //= 64
        if v == 0:
            return digits


def _write_dictd(base, records, extra_headwords=()):
    """A dictd database: gzip text + index of base64 (offset, length); the first record is metadata."""
    body, index = b"", []
    for headword, text in [("00-database-info", "info record\n")] + records:
        data = text.encode()
        index.append(f"{headword}\t{_b64(len(body))}\t{_b64(len(data))}")
        body += data
    for alias, target in extra_headwords:          # a second headword pointing at an existing record
        index.append(alias + "\t" + next(line for line in index if line.startswith(target + "\t")).split("\t", 1)[1])
    base.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(str(base) + ".dict.dz", "wb") as f:
        f.write(body)
    (base.parent / (base.name + ".index")).write_text("\n".join(sorted(index)) + "\n")


def test_dictd_base64_numbers():
    assert dt.dictd_b64("A") == 0 and dt.dictd_b64("BA") == 64 and dt.dictd_b64("L1n") == 48487
    assert all(dt.dictd_b64(_b64(v)) == v for v in (0, 1, 63, 64, 4095, 123456789))


def test_gcide_entries_labels_and_cleaning(tmp_path):
    _write_dictd(tmp_path / "usr/share/dictd/gcide", GCIDE_RECORDS, extra_headwords=[("Belly", "Abdomen")])
    entries = dt.gcide_entries(root=tmp_path)
    by_word = {e.headword: e for e in entries}
    assert list(by_word) == ["Abasia", "Abdomen", "Abate", "Glycin"]      # aliases do not duplicate
    assert by_word["Abasia"].labels == ("Med.",)
    assert by_word["Abdomen"].labels == ("Anat.", "Zool.")
    assert by_word["Glycin"].labels == ("Physiol.", "Chem.")
    assert by_word["Abate"].labels == ()
    assert [e.headword for e in entries if e.is_medical] == ["Abasia", "Abdomen", "Glycin"]
    text = by_word["Abasia"].text
    assert text.startswith("Abasia, n.") and "Inability to coordinate muscular actions" in text
    assert "Webster" not in text and "\\" not in text and "[" not in text and "NL." not in text
    assert "Same as Glycocoll; an encyclopaedic elan." in by_word["Glycin"].text
    assert "the body between the thorax" in by_word["Abdomen"].text        # wrapped lines joined
    assert [e.headword for e in dt.gcide_entries(root=tmp_path, medical_only=True)] == ["Abasia", "Abdomen",
                                                                                        "Glycin"]


def test_wordnet_entries(tmp_path):
    _write_dictd(tmp_path / "usr/share/dictd/wn", [
        ("dog", "dog\n    n 1: a member of the genus Canis [syn: {dog}, {domestic dog}]\n")])
    (doc,) = dt.wordnet_entries(root=tmp_path)
    assert doc.id == "wn/dog" and "[syn: dog, domestic dog]" in doc.text and "{" not in doc.text


def test_python_docs_fortunes_debian_reference(tmp_path):
    src = tmp_path / "usr/share/doc/python3.11/html/_sources"
    (src / "library").mkdir(parents=True)
    (src / "library/os.rst.txt").write_text(":mod:`os` --- Miscellaneous\n=====\n\nText.\n")
    (src / "index.rst.txt").write_text("Index\n")
    assert [d.id for d in dt.python_docs(root=tmp_path)] == ["pydoc/index.rst.txt", "pydoc/library/os.rst.txt"]

    fort = tmp_path / "usr/share/games/fortunes"
    fort.mkdir(parents=True)
    (fort / "science").write_text("E = mc^2\n%\nTwo\nlines\n%\n")
    (fort / "science.dat").write_bytes(b"\x00\x01")
    (fort / "ascii-art").write_text("<o>\n%\n")
    docs = dt.fortunes(root=tmp_path)
    assert [d.text for d in docs] == ["E = mc^2", "Two\nlines"]
    assert docs[0].meta == {"category": "science"}

    ref = tmp_path / "usr/share/debian-reference"
    ref.mkdir(parents=True)
    body = "    " + "Words about packages. " * 12 + "\n"
    book = ("Debian Reference\n\nTable of Contents\n\n1. GNU/Linux tutorials\n    1.1. Console basics\n\n"
            f"Chapter\xa01.\xa0GNU/Linux tutorials\n\n{body}\n1.1.\xa0Console basics\n\n{body}\n"
            "1.1.1.\xa0Tiny\n\n    short\n")
    with gzip.open(ref / "debian-reference.en.txt.gz", "wt") as f:
        f.write(book)
    docs = dt.debian_reference(root=tmp_path)
    assert [d.id for d in docs] == ["debref/Chapter 1. GNU/Linux tutorials", "debref/1.1. Console basics"]
    assert docs[1].text.split("\n")[2].startswith("Words about packages.")     # dedented


def test_missing_package_names_the_fetch_script(tmp_path):
    with pytest.raises(dt.MissingDataError, match="fetch_offline_data.sh"):
        dt.gcide_entries(root=tmp_path)
    with pytest.raises(ValueError, match="known"):
        dt.package_path("not-a-package")


def _installed(package):
    try:
        dt.package_path(package)
        return True
    except dt.MissingDataError:
        return False


@pytest.mark.skipif(not _installed("dict-gcide"), reason="dict-gcide not fetched (bash ci/fetch_offline_data.sh)")
def test_real_gcide_has_medical_entries():
    entries = dt.gcide_entries(max_entries=3000)
    medical = [e for e in entries if e.is_medical]
    assert len(medical) > 50
    assert any("Med." in e.labels for e in medical) and any("Anat." in e.labels for e in medical)
    assert all("[1913 Webster]" not in e.text for e in entries)


@pytest.mark.skipif(not all(map(_installed, dt.PACKAGES)), reason="Debian text packages not fetched")
def test_real_packages_read():
    assert len(dt.python_docs(max_files=20)) == 20
    assert len(dt.wordnet_entries(max_entries=50)) == 50
    assert len(dt.fortunes(max_docs=100)) == 100
    assert len(dt.debian_reference()) > 300
