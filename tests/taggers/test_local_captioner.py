"""Local Hugging Face captioner folders (docs/taggers.md#local-captioners): `backend: local-dir`
loads the tagger's `model_dir` offline through the engine. Without a provisioned folder, or
without transformers on the worker, the step fails with a message saying what to do; with
transformers installed a tiny random-initialised BLIP saved to a temporary folder captions
(skipped cleanly where transformers is absent)."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from apps.taggers.engine.captioner import prompt_sha256
from apps.taggers.models import Caption, SchemeRun, StepOutput, StepRun
from apps.taggers.services import scheme_runs, scheme_steps
from apps.taggers.services.schemes import scheme_create
from tests.media.factories import make_item
from tests.taggers import factories
from tests.taggers.wd_fixtures import halves_png, tagger_make

pytestmark = pytest.mark.django_db
HAS_TRANSFORMERS = importlib.util.find_spec("transformers") is not None


@pytest.fixture
def models(settings, tmp_path: Path, monkeypatch) -> Path:
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):  # loading sets them; restored after
        monkeypatch.delenv(name, raising=False)
    root = tmp_path / "models"
    (root / "captioner").mkdir(parents=True)
    settings.BAGGINTAG_MODEL_DIR = str(root)
    scheme_steps._backends.clear()
    return root


def _run(prompt: str = "a picture of") -> StepRun:
    tagger_make("local", "captioner", model_dir="captioner/tiny", params={"backend": "local-dir"})
    make_item(data=halves_png((255, 0, 0), (0, 0, 255), seed=1))
    step = {
        "key": "describe",
        "tagger": "local",
        "input": "image",
        "prompt": prompt,
        "params": {"max_tokens": 5},
    }
    scheme = scheme_create(name="local", body={"steps": [step]})
    run = scheme_runs.scheme_run_start(scheme=scheme)
    factories.scheme_jobs_drain(20)
    return StepRun.objects.select_related("run").get(run=run)


def test_a_folder_without_config_fails_the_step_saying_what_to_provision(models) -> None:
    step = _run()
    assert (step.status, step.run.status) == (StepRun.Status.FAILED, SchemeRun.Status.FAILED)
    assert "config.json" in step.error
    assert not Caption.objects.exists()


@pytest.mark.skipif(HAS_TRANSFORMERS, reason="transformers is installed here")
def test_without_transformers_the_step_fails_naming_the_package(models) -> None:
    folder = models / "captioner" / "tiny"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "blip"}))
    step = _run()
    assert step.status == StepRun.Status.FAILED
    assert "transformers" in step.error


WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "picture", "of", "red", "blue"]


def _tiny_blip(folder: Path) -> None:
    """A random-initialised BLIP captioner (about 64k parameters) and its processor, written with
    save_pretrained: no download. The tokenizer is built here with the tokenizers library from a
    ten-word vocabulary; the language head's bias favours "red", so greedy decoding writes a known
    caption whatever the random weights are."""
    import torch
    import transformers as tf
    from tokenizers import Tokenizer, pre_tokenizers, processors
    from tokenizers.models import WordLevel

    torch.manual_seed(0)
    folder.mkdir(parents=True)
    vocab = {word: i for i, word in enumerate(WORDS)}
    core = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tokenizer = tf.PreTrainedTokenizerFast(
        tokenizer_object=core, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", bos_token="[CLS]",
    )  # fmt: skip
    images = tf.BlipImageProcessor(size={"height": 32, "width": 32})
    tf.BlipProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(str(folder))
    config = tf.BlipConfig(
        text_config={"vocab_size": len(WORDS), "hidden_size": 32, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "intermediate_size": 64, "bos_token_id": 2,
                     "sep_token_id": 3, "pad_token_id": 0},
        vision_config={"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "intermediate_size": 64, "image_size": 32, "patch_size": 16},
        projection_dim=32,
    )  # fmt: skip
    model = tf.BlipForConditionalGeneration(config)
    with torch.no_grad():
        model.text_decoder.cls.predictions.bias[vocab["red"]] = 100.0
    model.save_pretrained(str(folder))


@pytest.mark.skipif(not HAS_TRANSFORMERS, reason="transformers is not installed")
def test_a_tiny_local_model_captions_offline(models) -> None:
    _tiny_blip(models / "captioner" / "tiny")
    step = _run()
    assert step.status == StepRun.Status.SUCCEEDED, step.error
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["TRANSFORMERS_OFFLINE"] == "1"
    caption = Caption.objects.get()
    # Five generated tokens after the prompt, which the backend strips from the answer.
    assert caption.text == "red red red red red"
    # Provenance: the step's resolved version, the rendered prompt's hash, the step's output row.
    assert caption.tagger_version_id == step.resolved_version_id
    assert caption.tagger_version.tagger.name == "local"
    assert caption.region_id is None
    assert caption.prompt_sha256 == prompt_sha256("a picture of")
    assert StepOutput.objects.filter(tagger_version=caption.tagger_version, item=caption.item).count() == 1
    assert (step.counts["sent"], step.counts["captions"], step.counts["items_failed"]) == (1, 1, 0)
