import copy
import math
import warnings

import pytest
import torch

import lorabar
from conftest import loss_of, make_batch, make_peft_model


def _grads(model, seed):
    model.zero_grad()
    loss_of(model, make_batch(seed)).backward()


def naive_bar(pairs, mode, coeff):
    """Paper Algs. 2/3 written with Python branches, per pair, in float64."""
    with torch.no_grad():
        for p in pairs:
            if p.x.grad is None or p.y.grad is None:
                continue
            if mode == "nbar":
                grow_x = p.x.grad.norm().item() >= p.y.grad.norm().item()
            else:
                grow_x = not (p.x.norm().item() >= p.y.norm().item())
            fx, fy = (1 + coeff, 1 - coeff) if grow_x else (1 - coeff, 1 + coeff)
            p.x.mul_(fx)
            p.y.mul_(fy)


def params_equal(m1, m2):
    return all(torch.equal(a, b) for a, b in zip(m1.parameters(), m2.parameters(), strict=True))


@pytest.mark.parametrize(
    "mode, x_after, y_after",
    [
        ("nbar", [[3.0, 4.4]], [[0.9], [-0.1]]),  # |g_x| = 3 >= |g_y| = 1: grow x, shrink y
        ("obar", [[2.4, 3.6]], [[1.1], [-0.1]]),  # |x| = 5 >= |y| = 1: shrink x, grow y
    ],
)
def test_hand_computed_rank1(mode, x_after, y_after):
    x = torch.nn.Parameter(torch.tensor([[3.0, 4.0]], dtype=torch.float64))
    y = torch.nn.Parameter(torch.tensor([[1.0], [0.0]], dtype=torch.float64))
    x.grad = torch.tensor([[3.0, 0.0]], dtype=torch.float64)
    y.grad = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    opt = torch.optim.SGD([x, y], lr=0.1)
    bar = lorabar.BAR([lorabar.FactorPair(x=x, y=y, name="l")], mode=mode, mu0=1.0)
    bar.attach(opt)
    opt.step()  # BAR with alpha*lr = 0.1, then x -= 0.1 g_x
    torch.testing.assert_close(
        x.detach(), torch.tensor(x_after, dtype=torch.float64), rtol=0, atol=1e-15
    )
    torch.testing.assert_close(
        y.detach(), torch.tensor(y_after, dtype=torch.float64), rtol=0, atol=1e-15
    )
    assert bar.step == 1


@pytest.mark.parametrize("mode", ["nbar", "obar"])
@pytest.mark.parametrize("schedule", ["constant", "cosine"])
@pytest.mark.parametrize("optim", ["sgd", "adamw"])
def test_matches_naive_loop(mode, schedule, optim):
    make_opt = {
        "sgd": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9),
        "adamw": lambda ps: torch.optim.AdamW(ps, lr=0.05, weight_decay=0.01),
    }[optim]
    m1, m2 = make_peft_model(), make_peft_model()
    opt1, opt2 = make_opt(list(m1.parameters())), make_opt(list(m2.parameters()))
    bar = lorabar.BAR(
        lorabar.find_lora_pairs(m1), mode=mode, mu0=2.0, schedule=schedule, total_steps=6
    )
    bar.attach(opt1)
    pairs2 = lorabar.find_lora_pairs(m2)
    sched = lorabar.schedules.resolve(schedule, 6)
    for t in range(6):
        _grads(m1, t)
        _grads(m2, t)
        opt1.step()
        naive_bar(pairs2, mode, 2.0 * sched(t) * 0.05)
        opt2.step()
        for a, b in zip(m1.parameters(), m2.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-14)
    assert bar.step == 6
    b0 = lorabar.balancedness(lorabar.find_lora_pairs(make_peft_model())).mean_abs_B
    assert not torch.equal(lorabar.balancedness(pairs2).mean_abs_B, b0)  # BAR did act


@pytest.mark.parametrize("mode", ["nbar", "obar"])
def test_foreach_equals_loop(mode):
    g = torch.Generator().manual_seed(0)
    shapes = [((4, 6), (5, 4)), ((4, 12), (8, 4)), ((1, 3), (2, 1)), ((2, 3, 3, 3), (4, 2, 1, 1))]

    def make():
        g.manual_seed(0)
        pairs = []
        for i, (a, b) in enumerate(shapes):
            x = torch.nn.Parameter(torch.randn(a, generator=g, dtype=torch.float64))
            y = torch.nn.Parameter(torch.randn(b, generator=g, dtype=torch.float64))
            x.grad = torch.randn(a, generator=g, dtype=torch.float64)
            y.grad = torch.randn(b, generator=g, dtype=torch.float64)
            pairs.append(lorabar.FactorPair(x=x, y=y, name=f"p{i}"))
        return pairs

    for lrs in ([0.3] * 4, [0.1, 0.2, 0.3, 0.4]):  # one rate, and one per pair
        a, b = make(), make()
        for pairs, foreach in ((a, True), (b, False)):
            bar = lorabar.BAR(pairs, mode=mode, mu0=1.0, foreach=foreach)
            for step in range(3):
                bar.apply(lrs)
        for p, q in zip(a, b, strict=True):
            assert torch.equal(p.x, q.x) and torch.equal(p.y, q.y)
        assert not torch.equal(a[0].x, make()[0].x)


@pytest.mark.parametrize("mode", ["nbar", "obar"])
def test_bar_foreach_equals_loop_with_missing_grad(mode):
    models = [make_peft_model(), make_peft_model()]
    bars = [
        lorabar.BAR(
            lorabar.find_lora_pairs(m),
            mode=mode,
            mu0=3.0,
            schedule="linear",
            total_steps=4,
            foreach=fe,
        )
        for m, fe in zip(models, (True, False))
    ]
    for t in range(4):
        for m, bar in zip(models, bars):
            _grads(m, t)
            emb = bar.pairs[0]
            emb.x.grad = None  # the embedding pair has no gradient this step
            before = (emb.x.clone(), emb.y.clone())
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                bar.apply(0.1)
            said = [w for w in seen if "have no gradient" in str(w.message)]
            untouched = torch.equal(emb.x, before[0]) and torch.equal(emb.y, before[1])
            if mode == "nbar":  # nBAR reads gradients: left alone, said once
                assert untouched and len(said) == (t == 0)
            else:  # oBAR reads only the factors: rescaled all the same, nothing to say
                assert not untouched and not said
        assert params_equal(*models)


def test_remove_restores_base_trajectory():
    m1, m2 = make_peft_model(), make_peft_model()
    opt1 = torch.optim.AdamW(m1.parameters(), lr=0.05)
    opt2 = torch.optim.AdamW(m2.parameters(), lr=0.05)
    bar = lorabar.BAR(lorabar.find_lora_pairs(m1), mode="obar", mu0=1.0)
    handle = bar.attach(opt1)
    assert bar.attached
    handle.remove()
    assert not bar.attached
    for t in range(3):
        for m, o in ((m1, opt1), (m2, opt2)):
            _grads(m, t)
            o.step()
        assert params_equal(m1, m2)
    assert bar.step == 0
    bar.attach(opt1)  # can be attached again after remove()
    _grads(m1, 9)
    opt1.step()
    assert bar.step == 1


def test_grad_scaler_skipped_step_skips_bar():
    model = make_peft_model(dtype=torch.float32)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    bar = lorabar.BAR(lorabar.find_lora_pairs(model), mode="nbar", mu0=1.0)
    bar.attach(opt)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    before = copy.deepcopy(model.state_dict())
    scaler.scale(loss_of(model, make_batch(0))).backward()
    bar.pairs[1].x.grad[0, 0] = float("inf")
    scaler.step(opt)
    scaler.update()
    assert bar.step == 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert scaler.get_scale() < 2.0**10
    opt.zero_grad()
    scaler.scale(loss_of(model, make_batch(1))).backward()
    scaler.step(opt)
    scaler.update()
    assert bar.step == 1


def test_per_group_lr_honored():
    model = make_peft_model()
    pairs = lorabar.find_lora_pairs(model)
    emb, lin = pairs
    opt = torch.optim.SGD(
        [{"params": [emb.x, emb.y], "lr": 0.1}, {"params": [lin.x, lin.y], "lr": 0.01}]
    )
    bar = lorabar.BAR(pairs, mode="obar", mu0=2.0)
    bar.attach(opt)
    for p in pairs:  # zero gradients: SGD leaves the factors alone, only BAR moves them
        p.x.grad, p.y.grad = torch.zeros_like(p.x), torch.zeros_like(p.y)
    before = [(p.x.clone(), p.y.clone()) for p in pairs]
    opt.step()
    for (x0, y0), p, lr in zip(before, pairs, (0.1, 0.01)):
        big_x = x0.norm() >= y0.norm()
        fx = 1 - 2.0 * lr if big_x else 1 + 2.0 * lr
        torch.testing.assert_close(p.x, x0 * fx, rtol=1e-15, atol=0)
        torch.testing.assert_close(p.y, y0 * (2 - fx), rtol=1e-15, atol=0)


def test_lr_scheduler_and_accumulation_no_warning():
    model = make_peft_model(dtype=torch.float32)
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    bar = lorabar.BAR(lorabar.find_lora_pairs(model), mu0=1.0, schedule="linear", total_steps=10)
    bar.attach(opt)
    sched = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0, end_factor=0.1, total_iters=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for t in range(4):
            for k in range(3):  # 3 micro-batches, one optimizer step
                (loss_of(model, make_batch(10 * t + k)) / 3).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
    assert bar.step == 4
    assert bar.alpha() == pytest.approx(0.6)


def test_state_dict_round_trip():
    def build():
        m = make_peft_model()
        o = torch.optim.AdamW(m.parameters(), lr=0.05)
        b = lorabar.BAR(
            lorabar.find_lora_pairs(m), mode="nbar", mu0=2.0, schedule="cosine", total_steps=8
        )
        b.attach(o)
        return m, o, b

    m1, o1, b1 = build()
    for t in range(3):
        _grads(m1, t)
        o1.step()
    saved = copy.deepcopy((m1.state_dict(), o1.state_dict(), b1.state_dict()))
    m2, o2, b2 = build()
    m2.load_state_dict(saved[0])
    o2.load_state_dict(saved[1])
    b2.load_state_dict(saved[2])
    assert b2.step == 3
    for t in range(3, 8):
        for m, o in ((m1, o1), (m2, o2)):
            _grads(m, t)
            o.step()
        assert params_equal(m1, m2)
    with pytest.raises(
        ValueError, match=r"Invalid state_dict: mode='obar' but this BAR has mode='nbar'"
    ):
        b2.load_state_dict({"step": 1, "mode": "obar", "mu0": 2.0})
    with pytest.raises(ValueError, match=r"Invalid state_dict: step=-1"):
        b2.load_state_dict({"step": -1})


def _trained(opt_cls=torch.optim.AdamW, steps=3):
    """A model, its optimizer and an attached BAR after ``steps`` steps, and their states."""
    m = make_peft_model()
    o = opt_cls(m.parameters(), lr=0.05)
    b = lorabar.BAR(lorabar.find_lora_pairs(m), mode="nbar", mu0=2.0)
    b.attach(o)
    for t in range(steps):
        _grads(m, t)
        o.step()
    return m, o, b, copy.deepcopy((m.state_dict(), o.state_dict(), b.state_dict()))


@pytest.mark.parametrize(
    "order",
    [
        "bar, attach, optimizer",
        "attach, bar, optimizer",
        "attach, optimizer, bar",
        "optimizer, attach, bar",
        "bar, optimizer, attach",
    ],
)
def test_a_restored_step_is_checked_whatever_the_order_of_calls(order):
    _, _, _, (_, opt3, _) = _trained(steps=3)
    _, _, _, (_, _, bar5) = _trained(steps=5)  # a BAR state ahead of the optimizer's
    m = make_peft_model()
    o = torch.optim.AdamW(m.parameters(), lr=0.05)
    b = lorabar.BAR(lorabar.find_lora_pairs(m), mode="nbar", mu0=2.0)
    calls = {
        "bar": lambda: b.load_state_dict(bar5),
        "attach": lambda: b.attach(o),
        "optimizer": lambda: o.load_state_dict(opt3),
    }
    with pytest.raises(ValueError, match=r"step=5 is ahead of the optimizer's 3 steps"):
        for name in order.split(", "):
            calls[name]()
        _grads(m, 0)
        o.step()


def test_an_optimizer_bar_was_detached_from_neither_confirms_nor_refuses_its_step():
    _, _, _, (_, opt7, _) = _trained(steps=7)
    _, _, _, (_, opt3, bar5) = _trained(steps=5)
    m = make_peft_model()
    old, new = (torch.optim.AdamW(m.parameters(), lr=0.05) for _ in range(2))
    b = lorabar.BAR(lorabar.find_lora_pairs(m), mode="nbar", mu0=2.0)
    b.attach(old).remove()
    b.attach(new)
    b.load_state_dict(bar5)
    old.load_state_dict(opt7)  # the optimizer it left: its count says nothing of BAR's step
    old.load_state_dict(opt3)  # ... neither way
    _grads(m, 0)
    with pytest.raises(ValueError, match=r"step=5 cannot be checked"):
        new.step()


def test_a_step_no_optimizer_count_confirms_is_refused_unless_trusted():
    # a fresh AdamW (its state never loaded) and plain SGD keep no count at the first step
    for opt_cls in (torch.optim.AdamW, torch.optim.SGD):
        _, _, _, (model, _, saved) = _trained(opt_cls, steps=3)
        m = make_peft_model()
        m.load_state_dict(model)
        o = opt_cls(m.parameters(), lr=0.05)
        b = lorabar.BAR(lorabar.find_lora_pairs(m), mode="nbar", mu0=2.0)
        b.load_state_dict(saved)
        b.attach(o)
        _grads(m, 3)
        with pytest.raises(
            ValueError,
            match=rf"step=3 cannot be checked: the {opt_cls.__name__}"
            r" keeps no step count .* trust_step=True",
        ):
            o.step()
        assert b.step == 3
    b.load_state_dict(saved, trust_step=True)  # the caller says SGD resumes too
    o.step()
    assert b.step == 4


def test_a_state_names_every_pair_unambiguously():
    m = make_peft_model()
    pairs = lorabar.find_lora_pairs(m)
    saved = lorabar.BAR(pairs, mode="obar").state_dict()
    assert saved["pair_shapes"] == [[list(p.x.shape), list(p.y.shape)] for p in pairs]
    alike = [lorabar.FactorPair(x=p.x, y=p.y) for p in pairs]  # every one named "pair"
    with pytest.raises(
        ValueError,
        match=r"names are given to more than one pair \('pair'\); "
        r"a state could not tell them apart",
    ):
        lorabar.BAR(alike, mode="obar").state_dict()
    # the same names over factors of another rank: told apart by their shapes
    wider = [
        lorabar.FactorPair(
            x=torch.ones(2 * p.x.shape[0], p.x.shape[1]),
            y=torch.ones(p.y.shape[0], 2 * p.y.shape[1]),
            name=p.name,
        )
        for p in pairs
    ]
    with pytest.raises(ValueError, match=r"Invalid state_dict: pair_shapes="):
        lorabar.BAR(wider, mode="obar").load_state_dict(saved)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_keeps_dtype_and_warns_on_noop(dtype):
    model = make_peft_model(dtype=dtype)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    bar = lorabar.BAR(lorabar.find_lora_pairs(model), mode="obar", mu0=0.1)
    bar.attach(opt)
    for p in bar.pairs:
        p.x.grad, p.y.grad = torch.zeros_like(p.x), torch.zeros_like(p.y)
    before = [p.x.clone() for p in bar.pairs]
    with pytest.warns(RuntimeWarning, match=r"below half the precision .* of a 16-bit factor"):
        opt.step()  # alpha*lr = 1e-4: a silent no-op in 16 bits, so we warn
    assert all(torch.equal(b, p.x) for b, p in zip(before, bar.pairs))
    big = lorabar.BAR(bar.pairs, mode="obar", mu0=100.0)
    big.apply(1e-3)  # alpha*lr = 0.1 is representable
    assert all(p.x.dtype == dtype and p.y.dtype == dtype for p in bar.pairs)
    assert not all(torch.equal(b, p.x) for b, p in zip(before, bar.pairs))


def test_invalid_arguments(peft_model):
    pairs = lorabar.find_lora_pairs(peft_model)
    with pytest.raises(ValueError, match=r"Invalid mu0: -0.5 \(expected a finite value >= 0\)"):
        lorabar.BAR(pairs, mu0=-0.5)
    with pytest.raises(ValueError, match=r"Invalid mu0: nan"):
        lorabar.BAR(pairs, mu0=math.nan)
    with pytest.raises(TypeError, match=r"Invalid mu0: '1'"):
        lorabar.BAR(pairs, mu0="1")
    with pytest.raises(
        ValueError, match=r"Invalid mode: 'sam' \(expected one of \('nbar', 'obar', 'sbar'\)\)"
    ):
        lorabar.BAR(pairs, mode="sam")
    with pytest.raises(ValueError, match=r"Invalid schedule: 'step'"):
        lorabar.BAR(pairs, schedule="step", total_steps=10)
    with pytest.raises(ValueError, match=r"Invalid total_steps: None \(schedule='linear'"):
        lorabar.BAR(pairs, schedule="linear")
    with pytest.raises(ValueError, match=r"Invalid pairs: empty"):
        lorabar.BAR([])
    with pytest.raises(TypeError, match=r"Invalid pairs: expected FactorPair items, got tuple"):
        lorabar.BAR([(pairs[0].x, pairs[0].y)])
    with pytest.raises(ValueError, match=r"also belongs to"):
        lorabar.BAR([pairs[0], lorabar.FactorPair(x=pairs[0].x, y=pairs[1].y, name="dup")])
    with pytest.raises(TypeError, match=r"Invalid foreach: 1"):
        lorabar.BAR(pairs, foreach=1)


def test_invalid_attach(peft_model):
    pairs = lorabar.find_lora_pairs(peft_model)
    bar = lorabar.BAR(pairs, mu0=20.0)
    with pytest.raises(
        TypeError, match=r"Invalid optimizer: expected a torch.optim.Optimizer, got list"
    ):
        bar.attach([])
    head = [p for n, p in peft_model.named_parameters() if "head" in n]
    with pytest.raises(
        ValueError, match=r"factor x/y of 'base_model.model.emb\[default\]' is not a parameter"
    ):
        bar.attach(torch.optim.SGD(head, lr=0.01))
    with pytest.raises(
        ValueError, match=r"Invalid alpha\*lr: 20\*0.1 = 2 for pair .* BAR needs 0 <= "
    ):
        bar.attach(torch.optim.SGD(peft_model.parameters(), lr=0.1))
    emb, lin = pairs
    split = torch.optim.SGD(
        [{"params": [emb.x, lin.x, lin.y]}, {"params": [emb.y], "lr": 0.002}], lr=0.001
    )
    handle = bar.attach(split)  # per-factor lrs (LoRA+): the pair's eta is their geometric mean
    assert bar._lrs(split) == [(0.001 * 0.002) ** 0.5, 0.001]
    handle.remove()
    opt = torch.optim.SGD(peft_model.parameters(), lr=0.01)
    bar.attach(opt)
    with pytest.raises(RuntimeError, match=r"already attached"):
        bar.attach(opt)
    opt.param_groups[0]["lr"] = 0.06  # a scheduler raising lr past 1/alpha is caught at step time
    _grads(peft_model, 0)
    with pytest.raises(ValueError, match=r"Invalid alpha\*lr: 20\*0.06 = 1.2"):
        opt.step()
