#!/usr/bin/python3
"""Tests of convert.py and make_golden.py (plain unittest; exits nonzero on a failure).

    /usr/bin/python3 weights_tools/test_convert.py [-v]

The scripts' main() functions run in this process (torch is imported once); one test runs convert.py as a
command to check its exit status. Needs Debian's python3-torch, torchvision and h5py.
"""
import contextlib
import importlib.util
import io
import math
import os
import subprocess
import sys
import tempfile
import unittest

try:
    import torch
    import torchvision
    import h5py
    import numpy as np
except ImportError as e:
    print(f"{e.name} not found for {sys.executable}: run scripts/install-deps.sh (Debian's /usr/bin/python3 has "
          f"torch)", file=sys.stderr)
    sys.exit(1)

HERE = os.path.dirname(os.path.abspath(__file__))


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


convert = load_script("convert")
make_golden = load_script("make_golden")


def call(main, *argv):
    """(exit status, stdout, stderr) of main(argv) run in this process."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in argv])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def random_state(arch, num_classes, seed):
    """A torchvision state dict with non-trivial BatchNorm buffers and counters (so the round trip tests them)."""
    torch.manual_seed(seed)
    state = getattr(torchvision.models, arch)(num_classes=num_classes).state_dict()
    for key, t in state.items():
        if key.endswith("running_mean"):
            t.normal_(0, 0.1)
        elif key.endswith("running_var"):
            t.uniform_(0.5, 1.5)
        elif key.endswith("num_batches_tracked"):
            t.fill_(1234)
    return state


def h5_attrs(path):
    with h5py.File(path, "r") as f:
        return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}


class TempDirTest(unittest.TestCase):
    def setUp(self):
        self._dir = tempfile.TemporaryDirectory(prefix="thaw-weights-tools-")
        self.tmp = self._dir.name

    def tearDown(self):
        self._dir.cleanup()

    def path(self, name):
        return os.path.join(self.tmp, name)


class ConvertTest(TempDirTest):
    def convert_ok(self, *argv):
        code, out, err = call(convert.main, *argv)
        self.assertEqual(code, 0, f"convert {' '.join(map(str, argv))} failed:\n{err}")
        return out

    def convert_fails(self, *argv):
        code, _, err = call(convert.main, *argv)
        self.assertEqual(code, 1, f"convert {' '.join(map(str, argv))} should have failed")
        return err

    def round_trip(self, arch, num_classes):
        state = random_state(arch, num_classes, seed=3)
        pth, h5, back = self.path("in.pth"), self.path("w.h5"), self.path("back.pth")
        torch.save(state, pth)
        self.convert_ok("to-h5", "--arch", arch, "--pth", pth, "--out", h5)

        attrs = h5_attrs(h5)
        self.assertEqual(attrs["format"], "thaw-weights-1")
        self.assertEqual(attrs["arch"], arch)
        self.assertEqual(attrs["num_classes"], num_classes)  # inferred from fc.weight
        self.assertTrue(np.issubdtype(type(attrs["num_classes"]), np.integer))
        self.assertIn("in.pth", attrs["source"])
        with h5py.File(h5, "r") as f:
            self.assertEqual(set(f.keys()), set(state.keys()))
            for key, t in state.items():
                if key.endswith("num_batches_tracked"):
                    self.assertEqual((f[key].dtype, f[key].shape), (np.dtype("int64"), ()), key)
                else:
                    self.assertEqual((f[key].dtype, f[key].shape), (np.dtype("float32"), tuple(t.shape)), key)

        self.convert_ok("to-pth", "--in", h5, "--out", back)
        loaded = torch.load(back, map_location="cpu")
        self.assertEqual(list(loaded.keys()), list(state.keys()))
        for key, t in state.items():
            self.assertEqual(loaded[key].dtype, t.dtype, key)
            self.assertTrue(torch.equal(loaded[key], t), f"{key} changed in the round trip")
        self.assertFalse([n for n in os.listdir(self.tmp) if ".tmp" in n], "temporary files left behind")

    def test_round_trip_resnet18(self):
        self.round_trip("resnet18", 37)

    def test_round_trip_resnet50(self):
        self.round_trip("resnet50", 1000)

    def test_wrapped_data_parallel_checkpoint(self):
        state = random_state("resnet18", 2, seed=4)
        pth, h5 = self.path("dp.pth"), self.path("dp.h5")
        torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}, pth)
        self.convert_ok("to-h5", "--arch", "resnet18", "--pth", pth, "--out", h5)
        with h5py.File(h5, "r") as f:
            self.assertEqual(set(f.keys()), set(state.keys()))
            self.assertTrue(np.array_equal(f["fc.weight"][()], state["fc.weight"].numpy()))

    def test_checkpoint_without_counters(self):
        # Checkpoints saved before PyTorch 0.4.1 have no num_batches_tracked; thaw ignores them anyway.
        state = {k: v for k, v in random_state("resnet18", 10, seed=9).items()
                 if not k.endswith("num_batches_tracked")}
        pth, h5, back = self.path("old.pth"), self.path("old.h5"), self.path("old-back.pth")
        torch.save(state, pth)
        self.convert_ok("to-h5", "--arch", "resnet18", "--pth", pth, "--out", h5)
        with h5py.File(h5, "r") as f:
            self.assertEqual(set(f.keys()), set(state.keys()))
        self.convert_ok("to-pth", "--in", h5, "--out", back)
        loaded = torch.load(back, map_location="cpu")
        self.assertEqual(int(loaded["bn1.num_batches_tracked"]), 0)
        for key, t in state.items():
            self.assertTrue(torch.equal(loaded[key], t), key)

    def test_torchvision_weights_from_the_hub_cache(self):
        # No network here: a stand-in file where torchvision looks first (it does not check the hash by default).
        state = random_state("resnet18", 1000, seed=10)
        checkpoints = self.path("torch-home/hub/checkpoints")
        os.makedirs(checkpoints)
        torch.save(state, os.path.join(checkpoints, "resnet18-f37072fd.pth"))
        saved = os.environ.get("TORCH_HOME")
        os.environ["TORCH_HOME"] = self.path("torch-home")
        try:
            h5 = self.path("tv.h5")
            self.convert_ok("to-h5", "--arch", "resnet18", "--torchvision", "DEFAULT", "--out", h5)
            err = self.convert_fails("to-h5", "--arch", "resnet18", "--torchvision", "IMAGENET1K_V9", "--out", h5)
            self.assertIn("choose one of: IMAGENET1K_V1, DEFAULT", err)
        finally:
            if saved is None:
                del os.environ["TORCH_HOME"]
            else:
                os.environ["TORCH_HOME"] = saved
        attrs = h5_attrs(h5)
        self.assertEqual(attrs["num_classes"], 1000)
        self.assertIn("IMAGENET1K_V1", attrs["source"])
        with h5py.File(h5, "r") as f:
            key = "layer2.1.bn1.running_var"
            self.assertTrue(np.array_equal(f[key][()], state[key].numpy()))

    def test_random_seed_is_deterministic(self):
        a, b = self.path("a.h5"), self.path("b.h5")
        self.convert_ok("to-h5", "--arch", "resnet18", "--random-seed", 5, "--num-classes", 3, "--out", a)
        self.convert_ok("to-h5", "--arch", "resnet18", "--random-seed", 5, "--num-classes", 3, "--out", b)
        self.assertEqual(h5_attrs(a)["num_classes"], 3)
        self.assertIn("manual_seed(5)", h5_attrs(a)["source"])
        with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
            self.assertEqual(set(fa.keys()), set(fb.keys()))
            for key in fa:
                self.assertTrue(np.array_equal(fa[key][()], fb[key][()]), key)

    def test_mismatched_keys_are_all_named(self):
        state = random_state("resnet18", 10, seed=6)
        del state["layer1.0.bn1.running_var"]
        state["fc2.weight"] = torch.zeros(10, 512)
        state["layer2.0.conv1.weight"] = torch.zeros(128, 64, 5, 5)
        pth, h5 = self.path("bad.pth"), self.path("bad.h5")
        torch.save(state, pth)
        err = self.convert_fails("to-h5", "--arch", "resnet18", "--pth", pth, "--out", h5)
        self.assertIn("missing key layer1.0.bn1.running_var", err)
        self.assertIn("unexpected key fc2.weight", err)
        self.assertIn("wrong shape for layer2.0.conv1.weight: (128, 64, 5, 5), expected (128, 64, 3, 3)", err)
        self.assertFalse(os.path.exists(h5))

    def test_command_exit_status(self):
        state = random_state("resnet18", 10, seed=7)
        state["layer4.1.bn2.bias"] = torch.zeros(7)
        pth = self.path("bad.pth")
        torch.save(state, pth)
        run = subprocess.run([sys.executable, os.path.join(HERE, "convert.py"), "to-h5", "--arch", "resnet18",
                              "--pth", pth, "--out", self.path("bad.h5")], capture_output=True, text=True)
        self.assertEqual(run.returncode, 1, run.stderr)
        self.assertIn("wrong shape for layer4.1.bn2.bias: (7,), expected (512,)", run.stderr)

    def test_nan_and_inf_are_named(self):
        state = random_state("resnet18", 10, seed=8)
        state["layer3.1.bn2.weight"][5] = math.nan
        state["conv1.weight"][0, 0, 0, 0] = math.inf
        pth = self.path("nan.pth")
        torch.save(state, pth)
        err = self.convert_fails("to-h5", "--arch", "resnet18", "--pth", pth, "--out", self.path("nan.h5"))
        self.assertIn("layer3.1.bn2.weight: 1 NaN/Inf", err)
        self.assertIn("conv1.weight: 1 NaN/Inf", err)

    def test_to_pth_checks_format_and_keys(self):
        h5 = self.path("w.h5")
        self.convert_ok("to-h5", "--arch", "resnet18", "--random-seed", 0, "--num-classes", 4, "--out", h5)
        with h5py.File(h5, "a") as f:
            del f["fc.bias"]
        err = self.convert_fails("to-pth", "--in", h5, "--out", self.path("w.pth"))
        self.assertIn("missing key fc.bias", err)
        with h5py.File(h5, "a") as f:
            f.attrs["format"] = "something-else"
        err = self.convert_fails("to-pth", "--in", h5, "--out", self.path("w.pth"))
        self.assertIn("format", err)


class PatternTest(unittest.TestCase):
    """The rule of core/name_pattern.h."""

    def test_name_matches(self):
        m = make_golden.name_matches
        self.assertTrue(m("layer4", "layer4.0.conv1.weight"))
        self.assertTrue(m("layer4.*", "layer4.0.conv1.weight"))
        self.assertTrue(m("fc", "fc.weight"))
        self.assertFalse(m("fc", "fc2.weight"))
        self.assertFalse(m("layer4", "layer40.weight"))
        self.assertTrue(m("*.bn*.weight", "layer3.1.bn2.weight"))
        self.assertFalse(m("*.bn*.weight", "bn1.weight"))  # no dot before bn1
        self.assertTrue(m("bn?", "bn1.weight"))
        self.assertFalse(m("bn?", "bn12.weight"))
        self.assertTrue(m("*", "conv1.weight"))
        self.assertTrue(m("layer*.0", "layer2.0.downsample.1.bias"))
        self.assertFalse(m("[l]ayer1", "layer1.0.conv1.weight"))  # brackets are literal, unlike fnmatch
        self.assertFalse(m("", "fc.weight"))

    def test_split_patterns(self):
        self.assertEqual(make_golden.split_patterns("layer3, layer4,fc,, "), ["layer3", "layer4", "fc"])


class MakeGoldenTest(TempDirTest):
    SMALL = ["--batch", 2, "--size", 32, "--num-classes", 5, "--seed", 11]

    def golden(self, tag, *argv):
        in_file, expected = self.path(f"{tag}-in.h5"), self.path(f"{tag}-expected.h5")
        code, _, err = call(make_golden.main, "--in-file", in_file, "--expected", expected, *argv)
        self.assertEqual(code, 0, err)
        return in_file, expected

    def test_input_and_expected_follow_the_spec(self):
        in_file, expected = self.golden("spec", *self.SMALL, "--float64-reference", "--steps", 2, "--bn-mode", "frozen",
                                        "--trainable", "layer4, fc", "--optimizer", "adamw", "--weight-decay", 0.01,
                                        "--class-weights")
        reference = torchvision.models.resnet18(num_classes=5)
        names = [n for n, _ in reference.named_parameters()]
        trainable = [n for n in names if n.startswith(("layer4.", "fc."))]
        stats = [n for n, _ in reference.named_buffers() if not n.endswith("num_batches_tracked")]

        attrs = h5_attrs(in_file)
        self.assertEqual(set(attrs), {"arch", "num_classes", "mode", "bn_mode", "trainable", "optimizer", "lr",
                                      "momentum", "weight_decay", "beta1", "beta2", "eps", "nesterov", "steps", "loss",
                                      "seed", "source"})
        self.assertEqual((attrs["arch"], attrs["mode"], attrs["bn_mode"], attrs["optimizer"], attrs["loss"]),
                         ("resnet18", "train", "frozen", "adamw", "cross_entropy"))
        self.assertEqual(attrs["trainable"], "layer4,fc")
        self.assertEqual((attrs["lr"], attrs["weight_decay"], attrs["eps"]), (0.001, 0.01, 1e-8))
        for key in ("num_classes", "nesterov", "steps", "seed"):
            self.assertEqual(type(attrs[key]), np.int64, key)
        for key in ("lr", "momentum", "weight_decay", "beta1", "beta2", "eps"):
            self.assertEqual(type(attrs[key]), np.float64, key)
        self.assertEqual((attrs["num_classes"], attrs["steps"], attrs["seed"]), (5, 2, 11))
        self.assertEqual(attrs["source"], "weights_tools/make_golden.py")

        with h5py.File(in_file, "r") as f, h5py.File(expected, "r") as g:
            self.assertEqual(set(f["weights"].keys()), set(reference.state_dict().keys()))
            self.assertEqual(f["weights/layer1.0.conv1.weight"].dtype, np.float32)
            self.assertEqual((f["weights/bn1.num_batches_tracked"].dtype, f["weights/bn1.num_batches_tracked"].shape),
                             (np.dtype("int64"), ()))
            self.assertGreater(np.abs(f["weights/layer2.1.bn1.running_mean"][()]).max(), 0)  # randomised BN
            self.assertEqual((f["x"].dtype, f["x"].shape), (np.float32, (2, 3, 32, 32)))
            self.assertEqual((f["y"].dtype, f["y"].shape), (np.int64, (2,)))
            self.assertTrue(((f["y"][()] >= 0) & (f["y"][()] < 5)).all())
            self.assertEqual((f["class_weights"].dtype, f["class_weights"].shape), (np.float32, (5,)))
            self.assertTrue((f["class_weights"][()] > 0).all())

            self.assertEqual((g["logits"].dtype, g["logits"].shape), (np.float32, (2, 5)))
            self.assertEqual((g["loss"].dtype, g["loss"].shape), (np.float32, ()))
            self.assertEqual((g["losses"].dtype, g["losses"].shape), (np.float32, (2,)))
            self.assertEqual(g["losses"][0], g["loss"][()])
            self.assertEqual(sorted(g["grads"].keys()), sorted(trainable))
            self.assertEqual(sorted(g["grads64"].keys()), sorted(trainable))
            self.assertEqual(g["grads64/fc.weight"].dtype, np.float64)
            self.assertEqual((g["logits64"].dtype, g["loss64"].dtype), (np.float64, np.float64))
            self.assertAlmostEqual(float(g["loss"][()]), float(g["loss64"][()]), places=4)
            self.assertEqual(sorted(g["params"].keys()), sorted(names))
            self.assertEqual(sorted(g["buffers"].keys()), sorted(stats))
            for name in names:  # frozen parameters stay, trainable ones move
                moved = not np.array_equal(g["params"][name][()], f["weights"][name][()])
                self.assertEqual(moved, name in trainable, name)
            for name in stats:  # frozen BatchNorm: running statistics untouched
                self.assertTrue(np.array_equal(g["buffers"][name][()], f["weights"][name][()]), name)
            # The float64 run, and both runs after their first step.
            self.assertEqual((g["losses64"].dtype, g["losses64"].shape), (np.float64, (2,)))
            self.assertAlmostEqual(float(g["losses64"][0]), float(g["loss64"][()]), places=12)
            for group, dtype in (("params64", np.float64), ("params_step1", np.float32),
                                 ("params64_step1", np.float64)):
                self.assertEqual(sorted(g[group].keys()), sorted(names), group)
                self.assertEqual(g[f"{group}/fc.weight"].dtype, dtype, group)
            for group in ("buffers64", "buffers_step1", "buffers64_step1"):
                self.assertEqual(sorted(g[group].keys()), sorted(stats), group)
            for name in names:  # the first step moved the trainable parameters only, and the second moved on
                step1, last = g["params64_step1"][name][()], g["params64"][name][()]
                self.assertEqual(not np.array_equal(step1, f["weights"][name][()]), name in trainable, name)
                self.assertEqual(not np.array_equal(step1, last), name in trainable, name)

    def test_train_mode_bce_without_steps(self):
        in_file, expected = self.golden("bce", "--batch", 3, "--size", 32, "--num-classes", 1, "--steps", 0,
                                        "--loss", "bce_with_logits", "--optimizer", "adam")
        with h5py.File(in_file, "r") as f, h5py.File(expected, "r") as g:
            self.assertTrue(set(np.unique(f["y"][()])) <= {0, 1})
            self.assertNotIn("class_weights", f)
            self.assertEqual(g["logits"].shape, (3, 1))
            self.assertEqual(g["losses"].shape, (0,))
            self.assertEqual(len(g["grads"]), len(g["params"]))  # "*": everything trains
            for name in g["params"]:  # no step: parameters unchanged
                self.assertTrue(np.array_equal(g["params"][name][()], f["weights"][name][()]), name)
            # Train-mode BatchNorm: the one forward updated the running statistics.
            self.assertFalse(np.array_equal(g["buffers/bn1.running_var"][()], f["weights/bn1.running_var"][()]))
            logits = torch.from_numpy(g["logits"][()])[:, 0]
            y = torch.from_numpy(f["y"][()]).float()
            self.assertAlmostEqual(float(g["loss"][()]),
                                   float(torch.nn.functional.binary_cross_entropy_with_logits(logits, y)), places=6)

    def test_eval_logits_from_the_stored_weights(self):
        in_file, expected = self.golden("eval", *self.SMALL, "--mode", "eval", "--steps", 0)
        model = torchvision.models.resnet18(num_classes=5).eval()
        with h5py.File(in_file, "r") as f, h5py.File(expected, "r") as g:
            model.load_state_dict({k: torch.from_numpy(np.array(v[()])) for k, v in f["weights"].items()}, strict=True)
            with torch.no_grad():
                logits = model(torch.from_numpy(f["x"][()]))
            self.assertTrue(torch.allclose(logits, torch.from_numpy(g["logits"][()]), rtol=1e-5, atol=1e-6))

    def test_same_seed_same_files(self):
        argv = [*self.SMALL, "--steps", 2, "--optimizer", "sgd", "--trainable", "layer3,bn1"]
        files = [self.golden(tag, *argv) for tag in ("a", "b")]
        for first, second in zip(*files):
            with h5py.File(first, "r") as a, h5py.File(second, "r") as b:
                self.assertEqual(h5_attrs(first), h5_attrs(second))
                names_a, names_b = [], []
                a.visit(names_a.append)
                b.visit(names_b.append)
                self.assertEqual(names_a, names_b)
                for name in names_a:
                    if isinstance(a[name], h5py.Dataset):
                        self.assertTrue(np.array_equal(a[name][()], b[name][()]), f"{first}: {name}")

    def test_bad_options_fail(self):
        out = [self.path("x-in.h5"), self.path("x-expected.h5")]
        cases = [(["--loss", "bce_with_logits"], "needs --num-classes 1"),
                 (["--trainable", "layer4,fc2"], "fc2"),
                 (["--trainable", " , "], "no patterns")]
        for argv, message in cases:
            code, _, err = call(make_golden.main, "--in-file", out[0], "--expected", out[1], *self.SMALL, *argv)
            self.assertEqual(code, 1, argv)
            self.assertIn(message, err)
            self.assertFalse(os.path.exists(out[0]) or os.path.exists(out[1]))


if __name__ == "__main__":
    unittest.main()
