"""kohya-ss/sd-scripts, as data: the dataset config (`--dataset_config`) levels, keys and kinds,
and the options of each training script (`--config_file` keys); checks of our generated files
against them (docs/export-upstream.md).

Read from `library/config_util.py` (`ConfigSanitizer`) at KOHYA_COMMIT, in our own words; the
option names are the `dest` of every action of each script's `setup_parser()` at that commit,
extracted mechanically (docs/export-upstream.md#provenance).
"""

from __future__ import annotations

import tomllib
from typing import Any

from apps.training.upstream._kinds import kind_problem, names, typed

KOHYA_COMMIT = "48d368fa557731ad0488c07304dfeba8c07910eb"

# --- kohya dataset config (`--dataset_config`, TOML) ------------------------------------------
#
# Value kinds: bool, int (not a bool), float (float only: `0` fails upstream, P13), number (int or
# float), str, dict, reso (int or [int, int]), float2 ([float, float]).
# A key "ascends" when it may also sit on an outer level (subset → dataset → general).

KOHYA_SUBSET_ASCENDABLE = typed(
    """
    color_aug:bool face_crop_aug_range:float2 flip_aug:bool num_repeats:int random_crop:bool
    shuffle_caption:bool keep_tokens:int keep_tokens_separator:str secondary_separator:str
    caption_separator:str enable_wildcard:bool token_warmup_min:int token_warmup_step:number
    caption_prefix:str caption_suffix:str custom_attributes:dict resize_interpolation:str
    """
)
# Caption dropout: accepted only where the script supports dropout; the textual-inversion
# scripts do not (`support_dropout = False`, P11) and reject these keys on every level.
KOHYA_DROPOUT = typed(
    """
    caption_dropout_every_n_epochs:int caption_dropout_rate:number caption_tag_dropout_rate:number
    """
)
# DreamBooth-style subsets (a folder of images with caption files): the only style we write.
KOHYA_DB_ASCENDABLE = typed("caption_extension:str class_tokens:str cache_info:bool")
KOHYA_DB_SUBSET_ONLY = typed("image_dir:str is_reg:bool alpha_mask:bool")
# Fine-tuning subsets (metadata JSON) are never written (P10, P25).
KOHYA_FT_SUBSET_ONLY = typed("metadata_file:str image_dir:str alpha_mask:bool")
# ControlNet-style subsets: what a block becomes under `--masked_loss` when every subset has a
# `conditioning_data_dir` (P14); no `is_reg` there.
KOHYA_CN_ASCENDABLE = typed("caption_extension:str cache_info:bool")
KOHYA_CN_SUBSET_ONLY = typed("image_dir:str conditioning_data_dir:str")
KOHYA_DATASET_ASCENDABLE = typed(
    """
    batch_size:int bucket_no_upscale:bool bucket_reso_steps:int enable_bucket:bool
    max_bucket_reso:int min_bucket_reso:int validation_seed:int validation_split:float
    resolution:reso network_multiplier:float resize_interpolation:str
    """
)
KOHYA_TOP_LEVEL = ("general", "datasets")
KOHYA_FLOAT_ONLY = frozenset(
    key
    for key, kind in {**KOHYA_SUBSET_ASCENDABLE, **KOHYA_DATASET_ASCENDABLE}.items()
    if kind in ("float", "float2")
)
# Valid upstream but never written by the export (docs/export-upstream.md#what-the-export-writes).
KOHYA_NOT_WRITTEN = names(
    """
    caption_separator keep_tokens caption_prefix caption_suffix caption_dropout_every_n_epochs
    face_crop_aug_range token_warmup_min token_warmup_step class_tokens cache_info alpha_mask
    network_multiplier resize_interpolation custom_attributes metadata_file
    """
)

# ConfigSanitizer(support_dreambooth, support_finetuning, support_controlnet, support_dropout)
# per script; support_controlnet is the script's `--masked_loss` value.
KOHYA_SANITIZER_FLAGS: dict[str, tuple[bool, bool, bool]] = {
    # script: (dreambooth, finetuning, dropout)
    "train_network.py": (True, True, True),
    "sdxl_train_network.py": (True, True, True),
    "train_db.py": (True, False, True),
    "sdxl_train.py": (True, True, True),
    "train_textual_inversion.py": (True, True, False),
    "sdxl_train_textual_inversion.py": (True, True, False),
}


def kohya_level_keys(level: str, *, support_dropout: bool, masked: bool = False) -> dict[str, str]:
    """Keys and kinds kohya accepts on `level` ("general", "dataset", "subset").

    `masked` is the ControlNet-style block (every subset has `conditioning_data_dir`)."""
    dropout = KOHYA_DROPOUT if support_dropout else {}
    if level == "general":
        cn = KOHYA_CN_ASCENDABLE if masked else {}
        return {
            **KOHYA_DATASET_ASCENDABLE,
            **KOHYA_SUBSET_ASCENDABLE,
            **KOHYA_DB_ASCENDABLE,
            **cn,
            **dropout,
        }
    style = KOHYA_CN_ASCENDABLE if masked else KOHYA_DB_ASCENDABLE
    if level == "dataset":
        return {**KOHYA_DATASET_ASCENDABLE, **KOHYA_SUBSET_ASCENDABLE, **style, **dropout}
    if level == "subset":
        only = KOHYA_CN_SUBSET_ONLY if masked else KOHYA_DB_SUBSET_ONLY
        return {**KOHYA_SUBSET_ASCENDABLE, **only, **style, **dropout}
    raise ValueError(f"unknown kohya level {level!r}")


# --- kohya script options (`--config_file` args.toml keys = argparse dests) -------------------
#
# Extracted mechanically: every action's `dest` from each script's `setup_parser()` at
# KOHYA_COMMIT (docs/export-upstream.md#provenance). Common to all six scripts, then per script.

_KOHYA_COMMON = names(
    """
    adaptive_noise_scale alpha_mask async_upload bucket_no_upscale bucket_reso_steps cache_info
    cache_latents cache_latents_to_disk caption_extension caption_extention caption_prefix
    caption_separator caption_suffix clip_skip color_aug conditioning_data_dir config_file
    console_log_file console_log_level console_log_simple dataset_class dataset_config
    ddp_gradient_as_bucket_view ddp_static_graph ddp_timeout debiased_estimation_loss
    debug_dataset deepspeed dynamo_backend enable_bucket enable_wildcard face_crop_aug_range
    flip_aug fp16_master_weights_and_gradients fp8_base full_bf16 full_fp16 fused_backward_pass
    gradient_accumulation_steps gradient_checkpointing highvram huber_c huber_scale
    huber_schedule huggingface_path_in_repo huggingface_repo_id huggingface_repo_type
    huggingface_repo_visibility huggingface_token ip_noise_gamma ip_noise_gamma_random_strength
    keep_tokens keep_tokens_separator learning_rate log_config log_prefix log_tracker_config
    log_tracker_name log_with logging_dir loss_type lowram lr_decay_steps lr_scheduler
    lr_scheduler_args lr_scheduler_min_lr_ratio lr_scheduler_num_cycles lr_scheduler_power
    lr_scheduler_timescale lr_scheduler_type lr_warmup_steps masked_loss max_bucket_reso
    max_data_loader_n_workers max_grad_norm max_timestep max_token_length max_train_epochs
    max_train_steps mem_eff_attn metadata_author metadata_description
    metadata_is_negative_embedding metadata_license metadata_merged_from metadata_preprocessor
    metadata_tags metadata_thumbnail metadata_title metadata_trigger_phrase metadata_usage_hint
    min_bucket_reso min_snr_gamma min_timestep mixed_precision multires_noise_discount
    multires_noise_iterations no_half_vae noise_offset noise_offset_random_strength
    offload_optimizer_device offload_optimizer_nvme_path offload_param_device
    offload_param_nvme_path optimizer_args optimizer_type output_config output_dir output_name
    persistent_data_loader_workers pretrained_model_name_or_path random_crop reg_data_dir
    resize_interpolation resolution resume resume_from_huggingface sample_at_first
    sample_every_n_epochs sample_every_n_steps sample_prompts sample_sampler
    save_every_n_epochs save_every_n_steps save_last_n_epochs save_last_n_epochs_state
    save_last_n_steps save_last_n_steps_state save_model_as save_n_epoch_ratio save_precision
    save_state save_state_on_train_end save_state_to_huggingface
    scale_v_pred_loss_like_noise_pred sdpa secondary_separator seed shuffle_caption
    skip_cache_check token_warmup_min token_warmup_step tokenizer_cache_dir torch_compile
    train_batch_size train_data_dir use_8bit_adam use_lion_optimizer v2 v_parameterization
    v_pred_like_loss vae vae_batch_size wandb_api_key wandb_run_name xformers zero3_init_flag
    zero3_save_16bit_model zero_stage zero_terminal_snr
    """
)
_KOHYA_ONLY_TRAIN_NETWORK = names(
    """
    base_weights base_weights_multiplier caption_dropout_every_n_epochs caption_dropout_rate
    caption_tag_dropout_rate cpu_offload_checkpointing dataset_repeats dim_from_weights
    fp8_base_unet in_json initial_epoch initial_step max_validation_steps network_alpha
    network_args network_dim network_dropout network_module network_train_text_encoder_only
    network_train_unet_only network_weights no_metadata prior_loss_weight scale_weight_norms
    skip_until_initial_step text_encoder_lr training_comment unet_lr validate_every_n_epochs
    validate_every_n_steps validation_seed validation_split weighted_captions
    """
)
_KOHYA_ONLY_SDXL_TRAIN_NETWORK = names(
    """
    base_weights base_weights_multiplier cache_text_encoder_outputs
    cache_text_encoder_outputs_to_disk caption_dropout_every_n_epochs caption_dropout_rate
    caption_tag_dropout_rate cpu_offload_checkpointing dataset_repeats dim_from_weights
    disable_mmap_load_safetensors fp8_base_unet in_json initial_epoch initial_step
    max_validation_steps network_alpha network_args network_dim network_dropout network_module
    network_train_text_encoder_only network_train_unet_only network_weights no_metadata
    prior_loss_weight scale_weight_norms skip_until_initial_step text_encoder_lr
    training_comment unet_lr validate_every_n_epochs validate_every_n_steps validation_seed
    validation_split weighted_captions
    """
)
_KOHYA_ONLY_TRAIN_DB = names(
    """
    caption_dropout_every_n_epochs caption_dropout_rate caption_tag_dropout_rate
    learning_rate_te no_token_padding prior_loss_weight stop_text_encoder_training
    use_safetensors weighted_captions
    """
)
_KOHYA_ONLY_SDXL_TRAIN = names(
    """
    block_lr cache_text_encoder_outputs cache_text_encoder_outputs_to_disk
    caption_dropout_every_n_epochs caption_dropout_rate caption_tag_dropout_rate
    dataset_repeats diffusers_xformers disable_mmap_load_safetensors fused_optimizer_groups
    in_json learning_rate_te1 learning_rate_te2 train_text_encoder use_safetensors
    weighted_captions
    """
)
_KOHYA_ONLY_TRAIN_TEXTUAL_INVERSION = names(
    """
    dataset_repeats in_json init_word num_vectors_per_token prior_loss_weight token_string
    use_object_template use_style_template weights
    """
)
_KOHYA_ONLY_SDXL_TRAIN_TEXTUAL_INVERSION = names(
    """
    dataset_repeats disable_mmap_load_safetensors in_json init_word num_vectors_per_token
    prior_loss_weight token_string use_object_template use_style_template weights
    """
)

KOHYA_ARGS: dict[str, frozenset[str]] = {
    "train_network.py": _KOHYA_COMMON | _KOHYA_ONLY_TRAIN_NETWORK,
    "sdxl_train_network.py": _KOHYA_COMMON | _KOHYA_ONLY_SDXL_TRAIN_NETWORK,
    "train_db.py": _KOHYA_COMMON | _KOHYA_ONLY_TRAIN_DB,
    "sdxl_train.py": _KOHYA_COMMON | _KOHYA_ONLY_SDXL_TRAIN,
    "train_textual_inversion.py": _KOHYA_COMMON | _KOHYA_ONLY_TRAIN_TEXTUAL_INVERSION,
    "sdxl_train_textual_inversion.py": _KOHYA_COMMON | _KOHYA_ONLY_SDXL_TRAIN_TEXTUAL_INVERSION,
}
KOHYA_TI_SCRIPTS = frozenset({"train_textual_inversion.py", "sdxl_train_textual_inversion.py"})


def _check_keys(where: str, table: Any, allowed: dict[str, str], why: dict[str, str]) -> list[str]:
    """Unknown keys and wrong kinds in one kohya table; `why` explains known-but-refused keys."""
    if not isinstance(table, dict):
        return [f"{where}: must be a table, not {type(table).__name__}"]
    problems = []
    for key, value in table.items():
        if key == "subsets":
            continue
        if key not in allowed:
            reason = why.get(key, "kohya rejects it (extra keys not allowed)")
            problems.append(f"{where}: unknown key '{key}': {reason}")
            continue
        bad = kind_problem(value, allowed[key])
        if bad:
            note = " (kohya accepts only floats here, P13)" if key in KOHYA_FLOAT_ONLY else ""
            problems.append(f"{where}: '{key}' {bad}{note}")
    return problems


def _refusal_reasons(*, support_dropout: bool, masked: bool) -> dict[str, str]:
    why = dict.fromkeys(KOHYA_FT_SUBSET_ONLY, "fine-tuning subsets are never written (P10, P25)")
    why["conditioning_data_dir"] = (
        "only valid with --masked_loss, in a block where every subset has one (P14)"
        if not masked
        else "a masked block needs it on every subset, not on the block"
    )
    why["is_reg"] = "masked (ControlNet-style) blocks have no regularisation subsets (P14)"
    why["image_dir"] = "image_dir belongs on [[datasets.subsets]] only"
    if not support_dropout:
        for key in KOHYA_DROPOUT:
            why[key] = "textual-inversion scripts reject caption-dropout keys (P11)"
    for level_key in KOHYA_DATASET_ASCENDABLE:
        why.setdefault(level_key, "a dataset-level key: write it on [[datasets]] or [general]")
    return why


def kohya_dataset_problems(doc: dict[str, Any], *, support_dropout: bool, masked: bool = False) -> list[str]:
    """Problems kohya's `ConfigSanitizer` would raise on a parsed dataset.toml, plus the few that
    only surface later (no resolution, no subsets, a repeated image_dir), each a sentence.

    `support_dropout` is False for the textual-inversion scripts; `masked` is the script's
    `--masked_loss` (a block whose subsets all have `conditioning_data_dir` is then ControlNet-style).
    Stricter than upstream in one way: a boolean is not accepted as an integer."""
    if not isinstance(doc, dict):
        return ["the dataset config must be a table"]
    why = _refusal_reasons(support_dropout=support_dropout, masked=masked)
    problems = [
        f"unknown top-level key '{key}': kohya reads only [general] and [[datasets]] (P12)"
        for key in doc
        if key not in KOHYA_TOP_LEVEL
    ]
    general = doc.get("general", {})
    general_keys = kohya_level_keys("general", support_dropout=support_dropout, masked=masked)
    problems += _check_keys("[general]", general, general_keys, why)
    datasets = doc.get("datasets")
    if not isinstance(datasets, list) or not datasets:
        return [*problems, "no [[datasets]]: the config trains nothing"]
    for i, dataset in enumerate(datasets):
        problems += _dataset_problems(
            i, dataset, general if isinstance(general, dict) else {}, why, support_dropout, masked
        )
    return problems


def _dataset_problems(
    i: int,
    dataset: Any,
    general: dict[str, Any],
    why: dict[str, str],
    support_dropout: bool,
    masked: bool,
) -> list[str]:
    where = f"[[datasets]] #{i + 1}"
    if not isinstance(dataset, dict):
        return [f"{where}: must be a table"]
    subsets = dataset.get("subsets")
    if not isinstance(subsets, list) or not subsets:
        return [f"{where}: no [[datasets.subsets]]: the block trains nothing"]
    dicts = [s for s in subsets if isinstance(s, dict)]
    cn_block = masked and len(dicts) == len(subsets) and all("conditioning_data_dir" in s for s in dicts)
    problems = _check_keys(
        where,
        dataset,
        kohya_level_keys("dataset", support_dropout=support_dropout, masked=cn_block),
        why,
    )
    if "resolution" not in dataset and "resolution" not in general:
        problems.append(f"{where}: no 'resolution' here or in [general]: kohya requires one")
    subset_keys = kohya_level_keys("subset", support_dropout=support_dropout, masked=cn_block)
    seen_dirs: set[str] = set()
    for j, subset in enumerate(subsets):
        sub_where = f"{where} subset #{j + 1}"
        problems += _check_keys(sub_where, subset, subset_keys, why)
        if not isinstance(subset, dict):
            continue
        image_dir = subset.get("image_dir")
        if image_dir is None:
            problems.append(f"{sub_where}: 'image_dir' is required")
        elif image_dir in seen_dirs:
            problems.append(f"{sub_where}: image_dir {image_dir!r} repeats: kohya ignores it (P15)")
        else:
            seen_dirs.add(str(image_dir))
        if cn_block and "conditioning_data_dir" not in subset:
            problems.append(f"{sub_where}: 'conditioning_data_dir' is required in a masked block")
    return problems


def kohya_args_problems(args: dict[str, Any] | str, script: str) -> list[str]:
    """L17: keys of an args.toml (`--config_file`) unknown to `script`, or repeated.

    kohya flattens the sections and keeps the last of a repeated key without a word (P21), and
    ignores unknown keys; both are problems here. Pass the raw TOML text to also catch a key
    repeated inside one section (TOML itself forbids that, so the file would not load)."""
    if script not in KOHYA_ARGS:
        raise ValueError(f"unknown kohya script {script!r}; known: {sorted(KOHYA_ARGS)}")
    if isinstance(args, str):
        try:
            args = tomllib.loads(args)
        except tomllib.TOMLDecodeError as exc:
            return [f"not valid TOML (a repeated key in one section fails here): {exc}"]
    known = KOHYA_ARGS[script]
    problems: list[str] = []
    first_seen: dict[str, str] = {}
    for name, value in args.items():
        entries = value.items() if isinstance(value, dict) else [(name, value)]
        section = f"[{name}]" if isinstance(value, dict) else "top level"
        for key, item in entries:
            if isinstance(item, dict):
                problems.append(f"{section}: '{key}' is a nested table: kohya reads one level")
                continue
            if key not in known:
                problems.append(f"{section}: '{key}' is not an option of {script}")
            if key in first_seen:
                problems.append(
                    f"{section}: '{key}' repeats {first_seen[key]}: kohya keeps the last one (P21)"
                )
            else:
                first_seen[key] = section
    return problems
