"""A teacher too large for one GPU: the device-map plan, and loading/encoding through a device map (on CPU)."""

from __future__ import annotations

import pytest
import torch

from expclip.models.placement import device_of, plan_teacher_map, primary_device
from expclip.models.teacher import Teacher


def _xxl_on_meta() -> Teacher:
    """blip2-flan-t5-xxl's encoder parts, shapes only (no memory)."""
    from transformers import Blip2Config

    from expclip.models.hub import ResolvedModel
    from expclip.models.teacher import TeacherInfo
    from expclip.models.tiny import tiny_t5_tokenizer

    cfg = Blip2Config(
        vision_config=dict(hidden_size=1408, intermediate_size=6144, num_hidden_layers=39, num_attention_heads=16),
        qformer_config=dict(hidden_size=768, num_hidden_layers=12, encoder_hidden_size=1408),
        text_config=dict(model_type="t5", vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=24,
                         num_heads=64, feed_forward_proj="gated-gelu"),
    )
    with torch.device("meta"):
        return Teacher(cfg, tiny_t5_tokenizer(), TeacherInfo(ResolvedModel("xxl", None, "meta"), torch.bfloat16))


def test_the_plan_keeps_the_image_path_first_and_splits_t5_blocks_in_balanced_runs():
    t = _xxl_on_meta()
    devices = ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
    plan = plan_teacher_map(t, devices)
    for unit in ("vision_model", "query_tokens", "qformer", "language_projection", "t5.shared"):
        assert plan[unit] == "cuda:0"
    blocks = [plan[f"t5.encoder.block.{i}"] for i in range(24)]
    assert blocks == sorted(blocks, key=devices.index)  # contiguous runs, in order
    assert set(blocks) == set(devices) and plan["t5.encoder.final_layer_norm"] == blocks[-1]
    load = {d: 0 for d in devices}
    for name, p in t.named_parameters():
        load[str(device_of(name, plan, "cpu"))] += p.numel()
    assert max(load.values()) < 1.25 * sum(load.values()) / len(devices)  # balanced within one block or so
    assert str(primary_device(plan)) == "cuda:0" and str(primary_device(devices)) == "cuda:0"


def test_a_single_device_gets_everything():
    plan = plan_teacher_map(_xxl_on_meta(), ["cuda:0"])
    assert set(plan.values()) == {"cuda:0"}


def test_device_map_loading_gives_the_same_targets(teacher, tiny_blip2_dir):
    """A split over two 'devices' (both the CPU here) loads every tensor where the map says, runs with the hooks
    that move activations, and gives the very same targets."""
    mapped = Teacher.from_pretrained(tiny_blip2_dir, device_map=["cpu", "cpu"])
    assert mapped.device_map is not None and "t5.encoder.block.1" in mapped.device_map
    x = torch.rand(3, 3, 32, 32)
    assert torch.equal(mapped.encode(x), teacher.encode(x))
    explicit = {"vision_model": "cpu", "t5.encoder.block.1": "cpu"}
    assert torch.equal(Teacher.from_pretrained(tiny_blip2_dir, device_map=explicit).encode(x), teacher.encode(x))
    with pytest.raises(ValueError, match="device_map"):
        Teacher.from_pretrained(tiny_blip2_dir, device_map="everywhere")


def test_input_movers_carry_activations_across_devices():
    """A real device change on a CPU-only machine: the second layer lives on the meta device."""
    from expclip.models.placement import attach_input_movers

    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 4))
    net[1].to("meta")
    with pytest.raises((RuntimeError, NotImplementedError)):
        net(torch.zeros(5, 2))  # without the movers the activation stays on the CPU
    attach_input_movers(net, {"0": "cpu", "1": "meta"})
    out = net(torch.zeros(5, 2))
    assert out.device.type == "meta" and out.shape == (5, 4)


@pytest.mark.gpu
def test_the_tiny_model_scores_on_a_gpu_as_on_the_cpu(tiny_head_dir):
    """Backbone, head and prompts all go to the GPU: the same probabilities as on the CPU."""
    from expclip import ExpCLIP
    from expclip.data.synthetic import draw_face

    face = draw_face("happiness", 64, seed=0)
    probs = {}
    for device in ("cpu", "cuda"):
        [row] = ExpCLIP.from_pretrained(tiny_head_dir, device=device).predict(face, faces="none", as_frame=False)
        probs[device] = torch.tensor([v for k, v in row.items() if k.startswith("p_")])
    assert len(probs["cpu"]) == 7
    torch.testing.assert_close(probs["cuda"], probs["cpu"], rtol=0, atol=1e-3)
