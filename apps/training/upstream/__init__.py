"""What the upstream trainers accept, as data, and checks of our generated configs against it.

The export writes configs for kohya-ss/sd-scripts and OneTrainer, which are not installable
packages and whose code is not copied here. This package records, in our own words, the schemas
those projects define at the commits the export pins (docs/export-upstream.md): kohya's
dataset-config levels, keys and kinds and the option names of each kohya training script
(`kohya.py`); OneTrainer's concept, train and sample config keys (`onetrainer.py`). The checks are
pure (dicts or text in, a list of problem sentences out, empty when fine) and run in the test
suite; `scripts/check_bundle_upstream.py` runs the real upstream code when checkouts are at hand.
"""

from apps.training.upstream.kohya import (
    KOHYA_ARGS,
    KOHYA_COMMIT,
    KOHYA_FLOAT_ONLY,
    KOHYA_NOT_WRITTEN,
    KOHYA_SANITIZER_FLAGS,
    KOHYA_TI_SCRIPTS,
    kohya_args_problems,
    kohya_dataset_problems,
    kohya_level_keys,
)
from apps.training.upstream.onetrainer import (
    MGDS_COMMIT,
    ONETRAINER_COMMIT,
    ONETRAINER_CONCEPT_DEFAULTS,
    ONETRAINER_CONCEPT_IMAGE_DEFAULTS,
    ONETRAINER_CONCEPT_IMAGE_KEYS,
    ONETRAINER_CONCEPT_KEYS,
    ONETRAINER_CONCEPT_TEXT_DEFAULTS,
    ONETRAINER_CONCEPT_TEXT_KEYS,
    ONETRAINER_CONCEPT_VERSION,
    ONETRAINER_EMBEDDING_KEYS,
    ONETRAINER_ENUMS,
    ONETRAINER_MODEL_TYPE,
    ONETRAINER_SAMPLE_KEYS,
    ONETRAINER_SAMPLE_VERSION,
    ONETRAINER_TRAIN_KEYS,
    ONETRAINER_TRAIN_VERSION,
    ONETRAINER_TRAIN_WRITTEN,
    onetrainer_concepts_problems,
    onetrainer_config_problems,
    onetrainer_samples_problems,
)

__all__ = [
    "KOHYA_ARGS",
    "KOHYA_COMMIT",
    "KOHYA_FLOAT_ONLY",
    "KOHYA_NOT_WRITTEN",
    "KOHYA_SANITIZER_FLAGS",
    "KOHYA_TI_SCRIPTS",
    "MGDS_COMMIT",
    "ONETRAINER_COMMIT",
    "ONETRAINER_CONCEPT_DEFAULTS",
    "ONETRAINER_CONCEPT_IMAGE_DEFAULTS",
    "ONETRAINER_CONCEPT_IMAGE_KEYS",
    "ONETRAINER_CONCEPT_KEYS",
    "ONETRAINER_CONCEPT_TEXT_DEFAULTS",
    "ONETRAINER_CONCEPT_TEXT_KEYS",
    "ONETRAINER_CONCEPT_VERSION",
    "ONETRAINER_EMBEDDING_KEYS",
    "ONETRAINER_ENUMS",
    "ONETRAINER_MODEL_TYPE",
    "ONETRAINER_SAMPLE_KEYS",
    "ONETRAINER_SAMPLE_VERSION",
    "ONETRAINER_TRAIN_KEYS",
    "ONETRAINER_TRAIN_VERSION",
    "ONETRAINER_TRAIN_WRITTEN",
    "kohya_args_problems",
    "kohya_dataset_problems",
    "kohya_level_keys",
    "onetrainer_concepts_problems",
    "onetrainer_config_problems",
    "onetrainer_samples_problems",
]
