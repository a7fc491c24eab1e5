"""The image task (SIM notes A.7.4): an EDM teacher trained here, its quality against NFE, one-step generators
distilled from it by each method with equal budgets, where each method's update lands over noise levels, the
sampling speed-up, and one step against a pixel-level autoregressive model (beyond the paper)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from ..core import dist
from ..core.fileio import atomic_write_json, ensure_dir
from ..core.flops import counted_forward_flops
from ..core.gpt import GPT
from ..core.timing import interleaved_medians
from ..errors import ConfigError
from .classifier import FeatureClassifier, classify, rotations, train_classifier
from .config import TEACHER_FD_TARGET, SimConfig, distill_runs, run_settings
from .distill import (
    Evaluator,
    LatentSampler,
    curve,
    distill,
    ema_halflife,
    extrapolated_images,
    final_metrics,
    images_to_reach,
    one_step,
)
from .edm import sample_nfe
from .images import load_images, num_classes
from .nets import scaled
from .pixel_ar import (
    compute_matched_steps,
    sample_pixel_ar,
    sized_like,
    to_images,
    to_tokens,
    train_pixel_ar,
)
from .profile import profiles, with_matched_run
from .quality import class_coverage, frechet_distance, precision_recall
from .teacher import TensorData, teacher_network, train_denoiser

Sampler = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]


class Scorer:
    """FD-classifier, k-NN precision/recall and class coverage (labelled sets) of samples drawn from fixed
    latents."""

    def __init__(self, classifier: FeatureClassifier, reference: torch.Tensor, z: torch.Tensor,
                 labels: torch.Tensor | None, cfg: SimConfig, classes: int):
        self.classifier, self.z, self.labels, self.cfg, self.classes = classifier, z, labels, cfg, classes
        self.reference = classify(classifier, reference)[0]

    @torch.no_grad()
    def samples(self, sampler: Sampler) -> torch.Tensor:
        out = []
        for i in range(0, len(self.z), self.cfg.images.eval_batch):
            labels = None if self.labels is None else self.labels[i:i + self.cfg.images.eval_batch]
            out.append(sampler(self.z[i:i + self.cfg.images.eval_batch], labels).float().cpu())
        return torch.cat(out)

    def score(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, float]:
        """The metrics of ``images``; ``labels`` (the classes they were asked for) adds ``label_acc``."""
        feats, preds = classify(self.classifier, images.clamp(-1, 1))
        finite = torch.isfinite(feats).all(1)
        precision, recall = precision_recall(self.reference, feats[finite], self.cfg.images.knn_k)
        out = {"fd": frechet_distance(self.reference, feats[finite]), "precision": precision, "recall": recall}
        if self.classes:
            out["classes"] = class_coverage(preds, self.classes)
        if labels is not None:
            out["label_acc"] = (preds == labels.cpu()).float().mean().item()
        return out

    def score_samples(self, sampler: Sampler) -> tuple[torch.Tensor, dict[str, float]]:
        images = self.samples(sampler)
        return images, self.score(images, self.labels)


@dataclass
class Images:
    """The image task's data: the train and test images (and labels), their class count and image shape."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: int

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def load_data(cfg: SimConfig) -> Images:
    """Phase 1: the dataset's splits, checked against what the metrics need."""
    ic = cfg.images
    classes = num_classes(ic.dataset)
    if ic.conditional and classes < 2:
        raise ConfigError(f"images.conditional needs labelled images: {ic.dataset} has no class subfolders")
    data = Images(*load_images(ic.dataset, "train", ic.resolution, ic.channels),
                  *load_images(ic.dataset, "test", ic.resolution, ic.channels), classes)
    for split, x in (("train", data.x_train), ("test", data.x_test)):
        if len(x) <= ic.knn_k:
            raise ConfigError(f"images.dataset={ic.dataset} has {len(x)} {split} images; the k-NN precision/recall "
                              f"need more than images.knn_k={ic.knn_k}: add images")
    return data


def fd_network(cfg: SimConfig, data: Images, out: Path, env: dist.DistEnv) -> tuple[FeatureClassifier, float]:
    """Phase 2: the FD network, a classifier of the labels, or of rotations on an unlabelled set (then no class
    coverage), with its test accuracy."""
    labelled = data.classes >= 2
    fd_train, fd_test = (((data.x_train, data.y_train), (data.x_test, data.y_test)) if labelled
                         else (rotations(data.x_train), rotations(data.x_test)))
    classifier = train_classifier(TensorData(*fd_train), data.classes if labelled else 4, cfg.images.classifier,
                                  out / "classifier", env, cfg.seed).to(env.device)
    return classifier, (classify(classifier, fd_test[0])[1] == fd_test[1]).float().mean().item()


def trained_teacher(cfg: SimConfig, data: Images, out: Path, env: dist.DistEnv) -> torch.nn.Module:
    """Phase 3: the EDM teacher, trained here unless ``images.teacher_path`` gives yours (used as it is)."""
    ic = cfg.images
    teacher = teacher_network(ic, data.shape, cfg.edm, data.classes if ic.conditional else 0, seed=cfg.seed)
    if not ic.teacher_path:
        teacher = train_denoiser(teacher, TensorData(data.x_train, data.y_train if ic.conditional else None),
                                 ic.teacher, cfg.edm, out / "teacher", env)
    return teacher.eval().to(env.device).requires_grad_(False)


def teacher_quality(cfg: SimConfig, teacher: torch.nn.Module, scorer: Scorer, data: Images, ref_idx: torch.Tensor,
                    summary: dict[str, float], grids: dict[str, torch.Tensor]) -> None:
    """Phase 4: the floor (held-out real images) and the teacher's quality at each NFE."""
    grids["data"] = data.x_train[ref_idx[:64]]
    for k, v in scorer.score(data.x_test[:cfg.images.n_eval]).items():
        summary[f"{k}.real_test"] = v
    for nfe in cfg.images.nfe:
        images, scores = scorer.score_samples(lambda zb, lb, nfe=nfe: sample_nfe(teacher, zb, nfe, cfg.edm, lb))
        for k, v in scores.items():
            summary[f"{k}.teacher.nfe{nfe}"] = v
        grids[f"teacher {nfe} NFE"] = images[:64]


def latent_sampler(cfg: SimConfig, data: Images, device: torch.device) -> LatentSampler:
    """The distillations' ``sample(n)``: latents z and, for a conditional model, uniform class labels."""
    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        z = torch.randn(n, *data.shape, device=device)
        return z, torch.randint(data.classes, (n,), device=device) if cfg.images.conditional else None
    return sample


def one_step_evaluator(scorer: Scorer, sigma_init: float) -> Evaluator:
    """The distillations' ``evaluate(G_ema)``: the scorer's metrics of one-step samples from its fixed latents."""
    return lambda generator: scorer.score_samples(lambda zb, lb: one_step(generator, zb, sigma_init, lb))[1]


def distill_methods(cfg: SimConfig, teacher: torch.nn.Module, scorer: Scorer, data: Images, out: Path,
                    env: dist.DistEnv, summary: dict[str, float], grids: dict[str, torch.Tensor]
                    ) -> tuple[dict[str, Path], torch.nn.Module | None, dict[str, dict]]:
    """Phase 5: a one-step generator distilled by each method at equal budgets; its FD curve, end metrics, the
    budget at which it matches the teacher and samples, and where its loss puts its weight over noise levels (the
    exact-Gaussian probe). Returns the curves' files, the last generator and the probes."""
    ic = cfg.images
    top = max(ic.nfe)
    matched = sorted(ic.nfe)[-2:]  # the teacher's best two NFEs, whose FD one step is measured against
    sample, evaluate = latent_sampler(cfg, data, env.device), one_step_evaluator(scorer, ic.distill.sigma_init)
    curves, generator = {}, None
    runs = distill_runs(ic.distill, cfg.methods, ic.huber_c_ablation, ic.weighting_ablation)
    dim = math.prod(data.shape)
    if ic.matched_profile:
        runs = with_matched_run(runs, ic.profile, dim, cfg.edm)
    summary.update(run_settings(runs))
    probes = profiles(runs, ic.profile, dim, cfg.edm)
    if env.is_main:
        atomic_write_json(out / "grad_profile.json", probes)
    for method, probe in probes.items():
        summary[f"grad_share_above_sigma1.{method}"] = probe["share_above_sigma1"]
    for method, dcfg in runs.items():
        print(f"[sim] images {ic.dataset}: {method}", flush=True)
        generator = distill(teacher, teacher, sample, dcfg, cfg.edm, ensure_dir(out / method), env, evaluate)
        records = [r for r in curve(out / method) if "fd" in r]
        for k, v in final_metrics(out / method).items():
            summary[f"{k}.{method}"] = v
        summary["fd.init_generator"] = records[0]["fd"]
        summary[f"fd_mid.{method}"] = records[len(records) // 2]["fd"]
        tail = [r["fd"] for r in records if r["step"] > dcfg.steps / 2]  # one end point is noisy: the 2nd half
        summary[f"fd_tail.{method}"] = sum(tail) / len(tail)
        for nfe in matched:  # the budget at which one step first matches the teacher
            summary[f"images_to_teacher_fd_nfe{nfe}.{method}"] = images_to_reach(
                records, "fd", summary[f"fd.teacher.nfe{nfe}"])
        summary[f"images_to_{TEACHER_FD_TARGET:g}x_teacher_fd_nfe{top}_extrapolated.{method}"] = extrapolated_images(
            records, "fd", TEACHER_FD_TARGET * summary[f"fd.teacher.nfe{top}"])
        grids[method] = scorer.samples(lambda zb, lb, gen=generator: one_step(gen, zb, dcfg.sigma_init, lb))[:64]
        curves[method] = out / method / "metrics.jsonl"
    summary["distill_images_per_method"] = ic.distill.steps * ic.distill.batch_size
    summary["distill_ema_halflife_images"] = ema_halflife(ic.distill)
    return curves, generator, probes


def sampling_speedup(cfg: SimConfig, generator: torch.nn.Module, teacher: torch.nn.Module, z: torch.Tensor,
                     labels: torch.Tensor | None, device: torch.device) -> dict[str, float]:
    """Phase 6: samples per second of one step and of the teacher at its largest NFE (every generator has the
    teacher's architecture, so timing the last one times them all)."""
    ic, top = cfg.images, max(cfg.images.nfe)
    batch_z, batch_labels = z[:ic.eval_batch], None if labels is None else labels[:ic.eval_batch]
    with torch.no_grad():
        seconds = interleaved_medians({
            "one_step": lambda: one_step(generator, batch_z, ic.distill.sigma_init, batch_labels),
            "teacher": lambda: sample_nfe(teacher, batch_z, top, cfg.edm, batch_labels)}, 3, device)
    return {"speedup.one_step_vs_teacher": seconds["teacher"] / seconds["one_step"],
            "samples_per_s.one_step": ic.eval_batch / seconds["one_step"],
            f"samples_per_s.teacher_nfe{top}": ic.eval_batch / seconds["teacher"]}


def pixel_ar_baseline(cfg: SimConfig, data: Images, teacher: torch.nn.Module, generator: torch.nn.Module,
                      scorer: Scorer, out: Path, env: dist.DistEnv, grids: dict[str, torch.Tensor]
                      ) -> dict[str, float]:
    """Phase 7 (beyond the paper): the pixel AR model sized like the generator and trained with the teacher's
    compute; its FD on the same features and sample count (and the quantised held-out images' FD, its floor), and
    its images per second against one step's in the same timing. Unconditional (the config says so)."""
    ic, device, ar = cfg.images, env.device, cfg.images.pixel_ar
    pixels = math.prod(data.shape)
    generator_params = sum(p.numel() for p in generator.parameters())
    gpt_cfg = sized_like(ar, pixels, generator_params)
    torch.manual_seed(cfg.seed)
    model = GPT(gpt_cfg)
    teacher_flops = counted_forward_flops(teacher, data.x_train[:1].to(device), torch.ones(1, device=device))
    ar_flops = counted_forward_flops(model, torch.zeros(1, pixels, dtype=torch.long))
    steps = ar.steps or compute_matched_steps(teacher_flops, ic.teacher, ar_flops, ar.batch_size)
    model = train_pixel_ar(model, data.x_train, ar.train_config(steps), ar.levels, out / "pixel_ar", env)
    model.to(device)
    g = torch.Generator(device).manual_seed(cfg.seed)
    images, scores = scorer.score_samples(
        lambda zb, lb: sample_pixel_ar(model, len(zb), data.shape, ar.levels, ar.temperature, g))
    grids["pixel AR"] = images[:64]
    batch = min(ic.eval_batch, len(scorer.z))
    z = scorer.z[:batch]
    with torch.no_grad():
        seconds = interleaved_medians({
            "one_step": lambda: one_step(generator, z, ic.distill.sigma_init),
            "pixel_ar": lambda: sample_pixel_ar(model, batch, data.shape, ar.levels, ar.temperature, g)}, 3, device)
    quantised = to_images(to_tokens(data.x_test[:ic.n_eval], ar.levels), data.shape, ar.levels)
    return {**{f"{k}.pixel_ar": v for k, v in scores.items()},
            "fd.real_test_quantised": scorer.score(quantised)["fd"],
            "params.pixel_ar": model.num_params(), "params.generator": generator_params,
            "train_steps.pixel_ar": steps, "train_flops.pixel_ar": 3 * steps * ar.batch_size * ar_flops,
            "train_flops.teacher": 3 * ic.teacher.steps * ic.teacher.batch_size * teacher_flops,
            "samples_per_s.pixel_ar": batch / seconds["pixel_ar"],
            "samples_per_s.one_step_beside_pixel_ar": batch / seconds["one_step"]}


def size_sweep(cfg: SimConfig, data: Images, teacher: torch.nn.Module, scorer: Scorer, out: Path,
               env: dist.DistEnv, summary: dict[str, float]) -> None:
    """Phase 8: the gap one step leaves to its own teacher against the generator's size (the generator is the
    teacher's network). Per width multiplier of ``images.size_sweep``, a teacher of those widths trained as the
    main one is, its FD at the top NFE, and SIM-PH distilled from it at the main run's settings; the main run is
    the multiplier-1 row. ``gap_log_ratio`` is ln(FD of one step / the teacher's FD), the measure of the
    one_step_vs_teacher claim; each row also gives the parameter count and both FDs."""
    ic, top = cfg.images, max(cfg.images.nfe)
    run = distill_runs(ic.distill, ["sim_phuber"], [], [])["sim_phuber"]
    sample, evaluate = latent_sampler(cfg, data, env.device), one_step_evaluator(scorer, ic.distill.sigma_init)
    rows = {1.0: (teacher, summary[f"fd.teacher.nfe{top}"], summary["fd.sim_phuber"])}
    for m in ic.size_sweep:
        run_dir = ensure_dir(out / f"size_x{m:g}")
        sized = trained_teacher(replace(cfg, images=replace(ic, net=scaled(ic.net, m))), data, run_dir, env)
        fd_teacher = scorer.score_samples(lambda zb, lb, t=sized: sample_nfe(t, zb, top, cfg.edm, lb))[1]["fd"]
        print(f"[sim] images {ic.dataset}: sim_phuber at {m:g}x the widths", flush=True)
        distill(sized, sized, sample, run, cfg.edm, ensure_dir(run_dir / "sim_phuber"), env, evaluate)
        rows[m] = (sized, fd_teacher, final_metrics(run_dir / "sim_phuber")["fd"])
    for m in sorted(rows):
        net, fd_teacher, fd_one_step = rows[m]
        size = f"size_x{m:g}"
        summary[f"params.{size}"] = sum(p.numel() for p in net.parameters())
        summary[f"fd_teacher_nfe{top}.{size}"] = fd_teacher
        summary[f"fd_sim_phuber.{size}"] = fd_one_step
        summary[f"gap_log_ratio.{size}"] = math.log(fd_one_step / fd_teacher)


def run_images(cfg: SimConfig, out: Path, env: dist.DistEnv) -> tuple[dict[str, float], dict[str, Any]]:
    """The image task, phase by phase. Returns the summary entries and what the plots need (sample grids,
    curves)."""
    ic, device = cfg.images, env.device
    data = load_data(cfg)
    classifier, accuracy = fd_network(cfg, data, out, env)
    summary: dict[str, float] = {"classifier_test_accuracy": accuracy}
    teacher = trained_teacher(cfg, data, out, env)
    g = torch.Generator().manual_seed(cfg.seed + 1)
    ref_idx = torch.randperm(len(data.x_train), generator=g)[:ic.n_reference]
    z = torch.randn(ic.n_eval, *data.shape, generator=g).to(device)
    labels = (torch.arange(ic.n_eval) % data.classes).to(device) if ic.conditional else None
    scorer = Scorer(classifier, data.x_train[ref_idx], z, labels, cfg, data.classes if data.classes >= 2 else 0)
    grids: dict[str, torch.Tensor] = {}
    teacher_quality(cfg, teacher, scorer, data, ref_idx, summary, grids)
    curves, generator, probes = distill_methods(cfg, teacher, scorer, data, out, env, summary, grids)
    summary.update(sampling_speedup(cfg, generator, teacher, z, labels, device))
    if ic.pixel_ar.enabled:
        summary.update(pixel_ar_baseline(cfg, data, teacher, generator, scorer, out, env, grids))
    if ic.size_sweep:
        size_sweep(cfg, data, teacher, scorer, out, env, summary)
    matched = sorted(ic.nfe)[-2:]
    teacher_fd = {f"teacher, {nfe} NFE": summary[f"fd.teacher.nfe{nfe}"] for nfe in reversed(matched)}
    return summary, {"grids": grids, "curves": curves, "teacher_fd": teacher_fd, "probes": probes}
