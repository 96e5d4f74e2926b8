"""The real bundled model on a slice of the sample corpus (three cities)."""

import pytest

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("question,doc", [
    ("What emergency-care radius did Yichang set?", "002_c1eac3b41c0a86c0.txt"),
    ("宜昌打造多少分钟急救圈?", "002_c1eac3b41c0a86c0.txt"),
    ("武汉的医疗急救圈是多少分钟?", "003_9996ae020915016f.txt"),
    ("How fast does Ezhou's 120 ambulance arrive in the main urban area?", "001_fe9e4e9dd9fdf586.txt"),
    ("鄂州建成了多少个红色网格驿站?", "001_fe9e4e9dd9fdf586.txt"),
])
def test_city_picks_the_document(real_pipeline, question, doc):
    hits = real_pipeline.search(question, k=3)
    assert hits[0].doc_id == doc


def test_yichang_passage_holds_the_radius(real_pipeline):
    hits = real_pipeline.search("What emergency-care radius did Yichang set?", k=5)
    assert any("县市“30分钟”急救圈" in h.text for h in hits if h.doc_id.startswith("002"))


def test_every_hit_offset_round_trips(real_pipeline):
    for mode in ("dense", "bm25", "hybrid"):
        for hit in real_pipeline.search("公共卫生体系建设", k=10, mode=mode):
            assert real_pipeline.document(hit.doc_id).text[hit.start:hit.end] == hit.text
