"""Nerogar/OneTrainer, as data: ConceptConfig (with its `image` and `text` parts), TrainConfig and
SampleConfig keys, kinds, defaults, versions and enum values; checks of our generated JSON
against them (docs/export-upstream.md).

Key lists and kinds come from `default_values().to_dict()` and `.types` of
`modules/util/config/*.py` at ONETRAINER_COMMIT, extracted mechanically; enum values from
`modules/util/enum/` and the concept window (docs/export-upstream.md#provenance).
"""

from __future__ import annotations

from typing import Any

from apps.training.upstream._kinds import kind_problem, names, typed

ONETRAINER_COMMIT = "23df3832e8f213d64c337e39f9365ba46e99fed0"
MGDS_COMMIT = "3a6994ad18a490acc4f3876658167525b7d88da7"

# --- OneTrainer (JSON) --------------------------------------------------------------------------
#
# Kinds: str, int (not a bool), float (a JSON float: an int comes back as x.0, so the round trip
# changes the file), bool (a real boolean: OneTrainer does not coerce, P32), dict, list,
# enum (a member name, as a string), config (a nested config object); a trailing `?` allows null.
# Key order is that of `to_dict()`: `__version` first, then the declared keys.

ONETRAINER_CONCEPT_VERSION = 2
ONETRAINER_CONCEPT_IMAGE_VERSION = 0
ONETRAINER_CONCEPT_TEXT_VERSION = 0
ONETRAINER_CONCEPT_KEYS = typed(
    """
    image:config text:config name:str path:str seed:int enabled:bool type:enum
    include_subdirectories:bool image_variations:int text_variations:int balancing:float
    balancing_strategy:enum loss_weight:float concept_stats:dict
    """
)
ONETRAINER_CONCEPT_IMAGE_KEYS = typed(
    """
    enable_crop_jitter:bool enable_random_flip:bool enable_fixed_flip:bool
    enable_random_rotate:bool enable_fixed_rotate:bool random_rotate_max_angle:float
    enable_random_brightness:bool enable_fixed_brightness:bool random_brightness_max_strength:float
    enable_random_contrast:bool enable_fixed_contrast:bool random_contrast_max_strength:float
    enable_random_saturation:bool enable_fixed_saturation:bool random_saturation_max_strength:float
    enable_random_hue:bool enable_fixed_hue:bool random_hue_max_strength:float
    enable_resolution_override:bool resolution_override:str
    enable_random_circular_mask_shrink:bool enable_random_mask_rotate_crop:bool
    """
)
ONETRAINER_CONCEPT_TEXT_KEYS = typed(
    """
    prompt_source:enum prompt_path:str enable_tag_shuffling:bool tag_delimiter:str
    keep_tags_count:int tag_dropout_enable:bool tag_dropout_mode:enum
    tag_dropout_probability:float tag_dropout_special_tags_mode:enum tag_dropout_special_tags:str
    tag_dropout_special_tags_regex:bool caps_randomize_enable:bool caps_randomize_mode:str
    caps_randomize_probability:float caps_randomize_lowercase:bool
    """
)
# Defaults (`default_values()`); the concept seed is drawn at random on every load (P30).
ONETRAINER_CONCEPT_DEFAULTS: dict[str, Any] = {
    "name": "",
    "path": "",
    "seed": None,
    "enabled": True,
    "type": "STANDARD",
    "include_subdirectories": False,
    "image_variations": 1,
    "text_variations": 1,
    "balancing": 1.0,
    "balancing_strategy": "REPEATS",
    "loss_weight": 1.0,
    "concept_stats": {},
}
ONETRAINER_CONCEPT_IMAGE_DEFAULTS: dict[str, Any] = {
    key: 0.0 if kind == "float" else False for key, kind in ONETRAINER_CONCEPT_IMAGE_KEYS.items()
} | {"enable_crop_jitter": True, "resolution_override": "512"}
ONETRAINER_CONCEPT_TEXT_DEFAULTS: dict[str, Any] = {
    "prompt_source": "sample",
    "prompt_path": "",
    "enable_tag_shuffling": False,
    "tag_delimiter": ",",
    "keep_tags_count": 1,
    "tag_dropout_enable": False,
    "tag_dropout_mode": "FULL",
    "tag_dropout_probability": 0.0,
    "tag_dropout_special_tags_mode": "NONE",
    "tag_dropout_special_tags": "",
    "tag_dropout_special_tags_regex": False,
    "caps_randomize_enable": False,
    "caps_randomize_mode": "capslock, title, first, random",
    "caps_randomize_probability": 0.0,
    "caps_randomize_lowercase": False,
}

# TrainConfig: every top-level key with its kind (`TrainConfig.default_values().types`), so a
# partial config.json (missing keys keep their defaults) can be checked key by key.
ONETRAINER_TRAIN_VERSION = 11
ONETRAINER_TRAIN_KEYS = typed(
    """
    training_method:enum model_type:enum debug_mode:bool debug_dir:str workspace_dir:str
    cache_dir:str huggingface_cache_dir:str offline_mode:bool tensorboard:bool
    tensorboard_expose:bool tensorboard_always_on:bool tensorboard_port:int validation:bool
    validate_after:int validate_after_unit:enum continue_last_backup:bool
    prevent_overwrites:bool include_train_config:enum multi_gpu:bool device_indexes:str
    gradient_reduce_precision:enum fused_gradient_reduce:bool async_gradient_reduce:bool
    async_gradient_reduce_buffer:int base_model_name:str output_dtype:enum
    output_model_format:enum output_model_destination:str async_offloading:bool
    force_circular_padding:bool compile:bool concept_file_name:str concepts:list?
    aspect_ratio_bucketing:bool latent_caching:bool clear_cache_before_training:bool
    learning_rate_scheduler:enum custom_learning_rate_scheduler:str? scheduler_params:list?
    learning_rate:float learning_rate_warmup_steps:float learning_rate_cycles:float
    learning_rate_min_factor:float epochs:int batch_size:int gradient_accumulation_steps:int
    ema:enum ema_decay:float ema_update_step_interval:int dataloader_threads:int
    train_device:str temp_device:str train_dtype:enum fallback_train_dtype:enum
    enable_autocast_cache:bool only_cache:bool resolution:str frames:str
    attention_mechanism:enum mse_strength:float mae_strength:float log_cosh_strength:float
    huber_strength:float huber_delta:float vb_loss_strength:float loss_weight_fn:enum
    loss_weight_strength:float dropout_probability:float loss_scaler:enum
    learning_rate_scaler:enum clip_grad_norm:float? offset_noise_weight:float
    generalized_offset_noise:bool perturbation_noise_weight:float
    rescale_noise_scheduler_to_zero_terminal_snr:bool force_v_prediction:bool
    force_epsilon_prediction:bool min_noising_strength:float max_noising_strength:float
    timestep_distribution:enum noising_weight:float noising_bias:float timestep_shift:float
    dynamic_timestep_shifting:bool unet:config prior:config transformer:config
    unconditional_transformer:config quantization:config text_encoder:config
    text_encoder_layer_skip:int text_encoder_sequence_length:int? text_encoder_2:config
    text_encoder_2_layer_skip:int text_encoder_2_sequence_length:int? text_encoder_3:config
    text_encoder_3_layer_skip:int text_encoder_4:config text_encoder_4_layer_skip:int
    vae:config effnet_encoder:config decoder:config decoder_text_encoder:config
    decoder_vqgan:config masked_training:bool unmasked_probability:float unmasked_weight:float
    normalize_masked_area_loss:bool masked_prior_preservation_weight:float
    custom_conditioning_image:bool layer_filter:str layer_filter_preset:str
    layer_filter_regex:bool embedding_learning_rate:float? preserve_embedding_norm:bool
    embedding:config additional_embeddings:list embedding_weight_dtype:enum cloud:config
    peft_type:enum lora_model_name:str lora_rank:int lora_alpha:float lora_decompose:bool
    lora_decompose_norm_epsilon:bool lora_decompose_output_axis:bool lora_weight_dtype:enum
    bundle_additional_embeddings:bool oft_block_size:int oft_block_share:bool oft_scaled:bool
    lokr_dim:int lokr_decompose_both:bool lokr_decompose_factor:int lokr_use_tucker:bool
    lokr_weight_decompose:bool lokr_dora_on_output:bool lokr_full_matrix:bool
    lokr_vec_trick:bool optimizer:config optimizer_defaults:dict
    sample_definition_file_name:str samples:list? sample_after:int sample_after_unit:enum
    sample_skip_first:int sample_image_format:enum sample_video_format:enum
    sample_audio_format:enum samples_to_tensorboard:bool non_ema_sampling:bool backup_after:int
    backup_after_unit:enum rolling_backup:bool rolling_backup_count:int backup_before_save:bool
    save_every:int save_every_unit:enum save_skip_first:int save_filename_prefix:str
    secrets:config
    """
)
ONETRAINER_EMBEDDING_VERSION = 0
ONETRAINER_EMBEDDING_KEYS = typed(
    """
    uuid:str model_name:str placeholder:str train:bool stop_training_after:int?
    stop_training_after_unit:enum token_count:int? initial_embedding_text:str
    is_output_embedding:bool
    """
)
# The keys the export writes in config.json (docs/export-upstream.md#what-the-export-writes).
ONETRAINER_TRAIN_WRITTEN = names(
    """
    model_type training_method base_model_name resolution aspect_ratio_bucketing latent_caching
    concept_file_name sample_definition_file_name workspace_dir cache_dir output_model_destination
    dropout_probability embedding
    """
)
ONETRAINER_SAMPLE_VERSION = 0
ONETRAINER_SAMPLE_KEYS = typed(
    """
    enabled:bool prompt:str negative_prompt:str height:int width:int frames:int length:float
    seed:int random_seed:bool diffusion_steps:int cfg_scale:float noise_scheduler:enum
    text_encoder_1_layer_skip:int text_encoder_1_sequence_length:int? text_encoder_2_layer_skip:int
    text_encoder_2_sequence_length:int? text_encoder_3_layer_skip:int text_encoder_4_layer_skip:int
    transformer_attention_mask:bool force_last_timestep:bool sample_inpainting:bool
    base_image_path:str mask_image_path:str
    """
)

# Allowed values of the enum-like keys we check (member names; the others are checked as strings).
ONETRAINER_ENUMS: dict[str, frozenset[str]] = {
    "type": names("STANDARD VALIDATION PRIOR_PREDICTION"),
    "balancing_strategy": names("REPEATS SAMPLES"),
    "prompt_source": names("sample concept filename"),
    "tag_dropout_mode": frozenset({"FULL", "RANDOM", "RANDOM WEIGHTED"}),
    "tag_dropout_special_tags_mode": names("NONE BLACKLIST WHITELIST"),
    "model_type": names(
        """
        STABLE_DIFFUSION_15 STABLE_DIFFUSION_15_INPAINTING STABLE_DIFFUSION_20
        STABLE_DIFFUSION_20_BASE STABLE_DIFFUSION_20_INPAINTING STABLE_DIFFUSION_20_DEPTH
        STABLE_DIFFUSION_21 STABLE_DIFFUSION_21_BASE STABLE_DIFFUSION_3 STABLE_DIFFUSION_35
        STABLE_DIFFUSION_XL_10_BASE STABLE_DIFFUSION_XL_10_BASE_INPAINTING WUERSTCHEN_2
        STABLE_CASCADE_1 PIXART_ALPHA PIXART_SIGMA FLUX_DEV_1 FLUX_FILL_DEV_1 FLUX_2 SANA
        HUNYUAN_VIDEO HI_DREAM_FULL CHROMA_1 QWEN ANIMA KREA_2 Z_IMAGE ERNIE IDEOGRAM_4
        """
    ),
    "training_method": names("FINE_TUNE LORA EMBEDDING FINE_TUNE_VAE"),
    "output_model_format": names(
        """
        DIFFUSERS ORIGINAL_SINGLE_FILE ORIGINAL_TRANSFORMER COMFY_TRANSFORMER LEGACY_SAFETENSORS
        DIFFUSERS_LORA KOHYA_LORA ORIGINAL_LORA COMFY_LORA LEGACY_LORA SAFETENSORS INTERNAL
        """
    ),
    "stop_training_after_unit": names("EPOCH STEP SECOND MINUTE HOUR NEVER ALWAYS"),
    "noise_scheduler": names(
        """
        DDIM EULER EULER_A DPMPP DPMPP_SDE UNIPC EULER_KARRAS DPMPP_KARRAS DPMPP_SDE_KARRAS
        UNIPC_KARRAS
        """
    ),
}
# What the export targets, by model family (docs/export-upstream.md#what-the-export-writes).
ONETRAINER_MODEL_TYPE = {
    "sd1": "STABLE_DIFFUSION_15",
    "sd2": "STABLE_DIFFUSION_21",
    "sd2-base": "STABLE_DIFFUSION_21_BASE",
    "sdxl": "STABLE_DIFFUSION_XL_10_BASE",
}


def _ot_problems(where: str, data: Any, keys: dict[str, str], version: int, *, complete: bool) -> list[str]:
    """One OneTrainer config object: `__version`, key set and order (when `complete`), kinds,
    enum values. Nested configs are left to the caller."""
    if not isinstance(data, dict):
        return [f"{where}: must be an object"]
    problems = []
    if data.get("__version") != version or isinstance(data.get("__version"), bool):
        problems.append(
            f"{where}: '__version' must be {version}, not {data.get('__version')!r} "
            "(a missing or wrong version re-runs OneTrainer's migrations, P31)"
        )
    if complete:
        expected = ["__version", *keys]
        missing = [k for k in expected if k not in data]
        if missing:
            problems.append(f"{where}: missing keys {missing}")
        present = [k for k in data if k in expected]
        if not missing and present != expected:
            problems.append(f"{where}: keys out of order: write them as {expected}")
    for key, value in data.items():
        if key == "__version":
            continue
        if key not in keys:
            problems.append(f"{where}: unknown key '{key}' (OneTrainer ignores it)")
            continue
        bad = kind_problem(value, keys[key])
        if bad:
            problems.append(f"{where}: '{key}' {bad}")
        elif value is not None and value not in ONETRAINER_ENUMS.get(key, (value,)):
            allowed = sorted(ONETRAINER_ENUMS[key])
            problems.append(f"{where}: '{key}' is {value!r}, not one of {allowed}")
    return problems


def onetrainer_concepts_problems(concepts: Any) -> list[str]:
    """Problems with a concepts.json list: every key of ConceptConfig (and its `image` and `text`
    parts) present in to_dict() order, right kinds, allowed values, right `__version`s."""
    if not isinstance(concepts, list):
        return ["concepts.json must be a list of concepts"]
    problems = []
    for i, concept in enumerate(concepts):
        where = f"concept #{i + 1}"
        problems += _ot_problems(
            where, concept, ONETRAINER_CONCEPT_KEYS, ONETRAINER_CONCEPT_VERSION, complete=True
        )
        if not isinstance(concept, dict):
            continue
        for part, keys, version in (
            ("image", ONETRAINER_CONCEPT_IMAGE_KEYS, ONETRAINER_CONCEPT_IMAGE_VERSION),
            ("text", ONETRAINER_CONCEPT_TEXT_KEYS, ONETRAINER_CONCEPT_TEXT_VERSION),
        ):
            if isinstance(concept.get(part), dict):
                problems += _ot_problems(f"{where} {part}", concept[part], keys, version, complete=True)
    return problems


def onetrainer_config_problems(cfg: Any) -> list[str]:
    """Problems with a (partial) config.json: `__version`, keys TrainConfig knows with the right
    kinds and values, the nested `embedding`; missing keys keep OneTrainer's defaults."""
    problems = _ot_problems(
        "config.json", cfg, ONETRAINER_TRAIN_KEYS, ONETRAINER_TRAIN_VERSION, complete=False
    )
    if isinstance(cfg, dict) and isinstance(cfg.get("embedding"), dict):
        problems += _ot_problems(
            "config.json embedding",
            cfg["embedding"],
            ONETRAINER_EMBEDDING_KEYS,
            ONETRAINER_EMBEDDING_VERSION,
            complete=False,
        )
    return problems


def onetrainer_samples_problems(samples: Any) -> list[str]:
    """Problems with a samples.json list of SampleConfig objects (partial objects allowed)."""
    if not isinstance(samples, list):
        return ["samples.json must be a list"]
    problems = []
    for i, sample in enumerate(samples):
        problems += _ot_problems(
            f"sample #{i + 1}",
            sample,
            ONETRAINER_SAMPLE_KEYS,
            ONETRAINER_SAMPLE_VERSION,
            complete=False,
        )
    return problems
