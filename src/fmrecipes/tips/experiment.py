"""One replicate of ``fmrecipes tips run`` / ``reproduce tips``: the paper's ablation ladder (Table 1, notes A.7)
at small scale, equal budgets.

Variants: (1) CLIP on alt-text, (2) + self-distillation, (3) + masked image modelling, (4) dual [CLS] with
synthetic captions, contrastive only, (5) full TIPS. Each trains for the same steps and batch from the same
seed, then is probed with the same frozen-feature budgets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from ..config import dump_yaml
from ..core import dist
from ..core.checkpoint import latest_checkpoint, load_model, save_model
from ..core.fileio import atomic_write_json, ensure_dir
from ..core.fingerprint import digest, file_digest, guard_inputs
from ..core.metrics import read_jsonl
from ..core.retrieval import (
    class_embeddings,
    encode_texts,
    retrieval_r1,
    zeroshot_accuracy,
)
from ..core.text_encoder import TextCodec, text_codec
from ..core.train import train
from ..core.vit import ViT
from ..data.fashion_mnist import zeroshot_images
from ..data.image_text import image_text_pack
from ..data.scene_human import human_captions
from ..data.scene_pack import ScenePack, pack_texts, scene_pack, to_float
from ..data.scene_text import class_phrases
from ..errors import FmError
from .config import VARIANTS, TIPSConfig
from .data import TIPSData
from .losses import tips_loss
from .model import TeacherHooks, TIPSModel
from .probes import N_SEG_CLASSES, depth_probe, encode_images, iou_parts, mean_depth_rmse, segmentation_probe
from .ssl import teacher_init_share
from .supervised import train_supervised

N_SHOWN = 4  # test scenes whose segmentation-probe predictions are kept for the plot
RANDOM_INIT = "random_init"  # the untrained baseline's name in the summary
SUPERVISED = "supervised"    # the dense probes' ceiling (tips.supervised)


@dataclass
class EvalSet:
    probe_train: ScenePack
    test: ScenePack
    human: list[str]           # held-out human-style captions of the test scenes (the retrieval queries)
    single: ScenePack          # one-object test scenes (zero-shot)
    fashion: torch.Tensor      # Fashion-MNIST test images as RGB float [N, 3, H, W]
    fashion_labels: torch.Tensor


def eval_set(cfg: TIPSConfig) -> EvalSet:
    p = cfg.probe
    fashion, labels = zeroshot_images(p.n_zeroshot, cfg.vit.image_size, cfg.data.fashion_dir)
    test = scene_pack(cfg.data, "test", p.n_test)
    single = scene_pack(replace(cfg.data, min_objects=1, max_objects=1), "test", p.n_test)
    return EvalSet(probe_train=scene_pack(cfg.data, "train", p.n_train), test=test,
                   human=human_captions(test.graphs, "test"), single=single,
                   fashion=fashion, fashion_labels=labels)


def evaluate(model: TIPSModel, codec: TextCodec, ev: EvalSet, cfg: TIPSConfig) -> dict[str, Any]:
    """All probes of one trained model (percent for accuracies, recalls and mIoU; depth units for RMSE)."""
    p = cfg.probe
    n_cls = model.vit.cfg.n_cls
    zc, rc = min(p.zeroshot_cls, n_cls) - 1, min(p.retrieval_cls, n_cls) - 1
    classes = class_embeddings(model.text, codec, class_phrases())
    out: dict[str, Any] = {
        "zeroshot_acc": 100 * zeroshot_accuracy(encode_images(model.vit, ev.fashion).cls[:, zc], classes,
                                                ev.fashion_labels),
        "zeroshot_scene_acc": 100 * zeroshot_accuracy(encode_images(model.vit, to_float(ev.single.images)).cls[:, zc],
                                                      classes, torch.tensor([l[0] for l in ev.single.labels])),
    }
    test = encode_images(model.vit, to_float(ev.test.images), layers=p.layers)  # [CLS]: the last block's
    # headline: held-out human-style queries; "_realigned": the dense-caption templates (in distribution for
    # models trained on synthetic captions, unseen phrasing for alt-text models)
    for suffix, queries in (("", ev.human), ("_realigned", ev.test.realigned)):
        texts = encode_texts(model.text, codec, queries)
        out[f"i2t_r1{suffix}"], out[f"t2i_r1{suffix}"] = (100 * r for r in retrieval_r1(test.cls[:, rc], texts))
        if n_cls == 2:
            out[f"i2t_r1{suffix}_cls2"], out[f"t2i_r1{suffix}_cls2"] = (
                100 * r for r in retrieval_r1(test.cls[:, 1], texts))
    towers = {"": model.vit}  # the student; with self-supervision (and probe.teacher) also the EMA teacher
    if hasattr(model, "teacher") and p.teacher:
        towers["_teacher"] = model.teacher["vit"]
    return {**out, **dense_probes(towers, ev, cfg, test_patches={"": test.patches})}


def dense_probes(towers: dict[str, ViT], ev: EvalSet, cfg: TIPSConfig,
                 test_patches: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
    """The segmentation and depth probes on each tower's frozen patch tokens (``<metric><suffix>`` for each
    ``suffix: tower``), the mIoU's parts, the depth floor and the first test predictions (``seg_pred``).
    ``test_patches``: a tower's test-scene patch tokens already encoded with ``probe.layers`` (by suffix)."""
    p = cfg.probe
    out: dict[str, Any] = {"depth_rmse_mean_predictor": mean_depth_rmse(ev.probe_train.depth, ev.test.depth)}
    for suffix, vit in towers.items():
        train_tokens = encode_images(vit, to_float(ev.probe_train.images), layers=p.layers).patches
        test_tokens = (test_patches or {}).get(suffix)
        if test_tokens is None:
            test_tokens = encode_images(vit, to_float(ev.test.images), layers=p.layers).patches
        miou, pred = segmentation_probe(train_tokens, ev.probe_train.semantic, test_tokens, ev.test.semantic, p)
        out[f"seg_miou{suffix}"] = 100 * miou
        for part, value in iou_parts(pred, ev.test.semantic, N_SEG_CLASSES).items():  # what the mIoU is made of
            out[f"seg_iou_{part}{suffix}"] = 100 * value
        out[f"depth_rmse{suffix}"] = depth_probe(train_tokens, ev.probe_train.depth, test_tokens, ev.test.depth, p)
        if not suffix:
            out["seg_pred"] = pred[:N_SHOWN].tolist()
    return out


def load_trained(run_dir: Path, cfg: TIPSConfig, variant: str) -> TIPSModel:
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        raise FmError(f"{run_dir} has no checkpoint: train it first (fmrecipes tips train)")
    torch.manual_seed(cfg.seed)
    model = TIPSModel(cfg, variant)
    load_model(ckpt, into=model)
    return model.eval()


def train_variant(cfg: TIPSConfig, variant: str, train_pack: ScenePack, codec: TextCodec, run_dir: Path,
                  env: dist.DistEnv) -> TIPSModel:
    """Train (or resume) ``variant`` in ``run_dir``; the same seed initialises every variant."""
    ensure_dir(run_dir)
    torch.manual_seed(cfg.seed)
    model = TIPSModel(cfg, variant)
    train(model, TIPSData(train_pack, codec, cfg, variant), None, cfg.train, run_dir, env=env, loss_fn=tips_loss,
          hooks=TeacherHooks())
    if env.is_main:  # written once trained: `tips probe` reads the config
        dump_yaml(replace(cfg, variant=variant), run_dir / "config.yaml")
        save_model(model.vit, run_dir / "vit")  # the image tower alone, for other recipes (altogether's encoder)
    return model.eval()


def prepare(cfg: TIPSConfig, out: Path, progress: bool, variants: list[str]) -> tuple[ScenePack, TextCodec]:
    """The training set (FashionScenes, or your ``train_data``: its images resized to the tower's input, a
    synthetic ``caption`` needed on every row when one of ``variants`` trains on it), and the tokenizer trained on
    its texts (``out/tokenizer``, once; resuming on changed data is an error)."""
    if cfg.train_data is None:
        pack = scene_pack(cfg.data, "train", cfg.n_train, progress=progress)
        source = f"FashionScenes {digest({'data': cfg.data, 'n_train': cfg.n_train})}"
    else:
        captions = any(VARIANTS[v]["dual_cls"] for v in variants)
        pack = image_text_pack(cfg.train_data, cfg.vit.image_size, ("caption",) if captions else (), progress)
        source = f"{cfg.train_data} {file_digest(cfg.train_data)}"
    guard_inputs(ensure_dir(out), {"training data": source}, "a tokenizer and towers")
    return pack, text_codec(cfg.text, cfg.tokenizer_vocab, pack_texts(pack), out / "tokenizer")


def run_experiment(cfg: TIPSConfig, env: dist.DistEnv) -> dict[str, Any]:
    """Train and probe every variant of ``cfg.variants`` (a finished variant's ``probes.json`` is reused)."""
    out = ensure_dir(cfg.out)
    pack, codec = prepare(cfg, out, env.progress, cfg.variants)
    ev = eval_set(cfg)
    results: dict[str, dict[str, Any]] = {}
    for variant in cfg.variants:
        run_dir = out / variant
        done = run_dir / "probes.json"
        if done.is_file():
            results[variant] = json.loads(done.read_text())
            continue
        print(f"[tips] {variant}", flush=True)
        model = train_variant(cfg, variant, pack, codec, run_dir, env)
        results[variant] = evaluate(model, codec, ev, cfg)
        atomic_write_json(done, results[variant])
    if cfg.probe.random_baseline:  # the floor: the same probes on an untrained tower (the seed's initialisation)
        torch.manual_seed(cfg.seed)
        results[RANDOM_INIT] = evaluate(TIPSModel(cfg, "dual_cls").eval(), codec, ev, cfg)
    if cfg.probe.supervised_ceiling:  # the ceiling: the same ViT trained on the masks and depth, probed alike
        done = out / SUPERVISED / "probes.json"
        if not done.is_file():
            print(f"[tips] {SUPERVISED}", flush=True)
            vit = train_supervised(cfg, pack, out / SUPERVISED, env)
            atomic_write_json(done, dense_probes({"": vit}, ev, cfg))
        results[SUPERVISED] = json.loads(done.read_text())
    from .paper import PAPER
    from .plots import ablation_bars, segmentation_grid

    ablation_bars(results, PAPER, out / "ablation.png")
    segmentation_grid(ev.test, {v: r["seg_pred"] for v, r in results.items()}, out / "segmentation_probe.png")
    summary: dict[str, Any] = {f"{metric}.{variant}": round(value, 4) for variant, r in results.items()
                               for metric, value in r.items() if metric != "seg_pred"}
    texts = {"synthetic": pack.captions, "alt": [t for ts in pack.alt_texts for t in ts if t.strip()],
             "retrieval_queries": ev.human, "retrieval_queries_realigned": ev.test.realigned}
    for name, items in texts.items():  # cut silently by the text tower's max_len
        summary[f"text_truncated_frac.{name}"] = round(codec.truncated_fraction(list(items)), 4)
    m0 = cfg.ssl.start_momentum(cfg.train.steps)
    for variant in cfg.variants:  # how far the EMA teacher that DINO and iBOT distil from moved off its init
        if VARIANTS[variant]["distill"] or VARIANTS[variant]["mim"]:
            summary[f"teacher_momentum_start.{variant}"] = m0
            summary[f"teacher_init_share.{variant}"] = teacher_init_share(m0, cfg.train.steps)
        if VARIANTS[variant]["distill"]:
            summary.update(collapse_diagnostics(out / variant, variant))
    return summary


def collapse_diagnostics(run_dir: Path, variant: str) -> dict[str, float]:
    """The DINO teacher's entropies and the student-teacher KL at the last logged step (``dino_<name>.<variant>``;
    every logged step is in ``metrics.jsonl``): a collapse shows as an entropy at 0 or log K."""
    logged = [r for r in read_jsonl(run_dir / "metrics.jsonl") if "dino_kl" in r]
    if not logged:
        return {}
    return {f"{k}.{variant}": round(v, 4) for k, v in logged[-1].items() if k.startswith("dino_")}


__all__ = [
    "VARIANTS",
    "eval_set",
    "evaluate",
    "load_trained",
    "prepare",
    "run_experiment",
    "train_variant",
]
