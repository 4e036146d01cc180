"""Every top-level model forward returns shared.models.output.ModelOutput(logits, loss)."""
import torch

from shared.models.bert import BertConfig, BertForMaskedLM, BertForSequenceClassification
from shared.models.output import ModelOutput
from shared.models.vision import ARCHS, VisionConfig, build_vision_model

BERT = dict(vocab_size=99, n_layer=1, n_head=2, d_model=16, d_ff=32, max_seq_len=16, dropout=0.0, attn_dropout=0.0)


def test_gpt_logits_without_targets_and_loss_only_with_them(tiny_gpt, seeded_generator):
    model = tiny_gpt(vocab_size=50)
    x = torch.randint(0, 50, (2, 8), generator=seeded_generator)
    out = model(x)
    assert isinstance(out, ModelOutput) and out.loss is None and out.logits.shape == (2, 8, 50)
    fused = model(x, targets=x.roll(-1, 1))
    assert isinstance(fused, ModelOutput) and fused.logits is None and fused.loss.ndim == 0


def test_bert_heads(seeded_generator):
    torch.manual_seed(0)
    ids = torch.randint(5, 99, (3, 10), generator=seeded_generator)
    mlm = BertForMaskedLM(BertConfig(**BERT)).eval()
    out = mlm(ids)
    assert isinstance(out, ModelOutput) and out.loss is None and out.logits.shape == (3, 10, 99)
    labels = torch.full_like(ids, -100)
    labels[0, 1], labels[2, 4] = 7, 8
    out = mlm(ids, labels=labels)
    assert out.logits.shape == (2, 99) and out.loss.ndim == 0           # only the masked rows
    clf = BertForSequenceClassification(BertConfig(**BERT), num_labels=3).eval()
    out = clf(ids)
    assert isinstance(out, ModelOutput) and out.loss is None and out.logits.shape == (3, 3)
    assert clf(ids, labels=torch.tensor([0, 1, 2])).loss.ndim == 0


def test_vision_classifiers_and_their_intermediates():
    x = torch.randn(2, 1, 8, 8)
    for arch in ARCHS:
        model = build_vision_model(VisionConfig(arch=arch, image_size=8, num_classes=4, width=4, blocks=1,
                                                vgg_layers=(4, "M", 8))).eval()
        out = model(x)
        assert isinstance(out, ModelOutput) and out.loss is None and out.logits.shape == (2, 4), arch
        assert torch.allclose(model.intermediates(x)[-1], out.logits), arch
