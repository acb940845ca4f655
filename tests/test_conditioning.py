"""ganlab.conditioning: one object for every draw of conditions."""
import pytest
import torch
from torch import nn

from ganlab.conditioning import ClassLabels, Conditioning, PairedInput, conditioning_for
from ganlab.errors import ConfigError


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_unconditional_draws_nothing_and_calls_with_one_argument():
    c = Conditioning()
    assert c.kind == "none" and c.num_classes == 0
    assert c.of_rows(torch.arange(3)) is None and c.draw(4, gen()) is None
    assert c.for_fakes(4, gen()) is None and c.grid(8) is None
    assert c.call(lambda x: x * 2, torch.ones(2), None).tolist() == [2.0, 2.0]


def test_class_labels_rows_fakes_samples_and_grid():
    labels = torch.tensor([3, 1, 4, 1, 5])
    c = ClassLabels(6, labels)
    assert c.of_rows(torch.tensor([2, 0])).tolist() == [4, 3]  # a real batch's own labels
    y = c.draw(6000, gen())
    assert y.min() >= 0 and y.max() == 5 and y.bincount().min() > 850  # uniform
    assert torch.equal(c.for_fakes(10, gen(1)), torch.randint(6, (10,), generator=gen(1)))
    # under torchrun each rank keeps its slice of one global draw
    global_draw = torch.randint(6, (16,), generator=gen(2))
    assert torch.equal(c.for_fakes(8, gen(2), 0, 2), global_draw[:8])
    assert torch.equal(c.for_fakes(8, gen(2), 1, 2), global_draw[8:])
    assert c.grid(12).tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]  # one row per class
    assert c.call(lambda x, y: x + y, torch.zeros(2), torch.tensor([1, 2])).tolist() == [1, 2]


def test_paired_input_reuses_real_conditions_and_draws_data_rows():
    values = torch.arange(10.0).reshape(5, 2)
    c = PairedInput(values)
    real = values[[4, 2]]
    assert c.for_fakes(2, gen(), real=real) is real  # fakes from the real batch's boards
    with pytest.raises(ValueError, match="real batch's conditions"):
        c.for_fakes(2, gen())
    drawn = c.draw(200, gen())
    assert all((values == row).all(1).any() for row in drawn)  # rows of the data
    distinct = c.draw(5, gen(), distinct=True)
    assert len({tuple(r.tolist()) for r in distinct}) == 5
    assert torch.equal(c.grid(3), values[:3])


def test_the_conditioning_a_generator_and_data_imply():
    class G(nn.Module):
        num_classes = 10

    assert conditioning_for(nn.Linear(1, 1), None, None).kind == "none"
    assert conditioning_for(nn.Linear(1, 1), torch.zeros(3), None).kind == "none"
    assert conditioning_for(G(), torch.zeros(3, dtype=torch.long), None).kind == "labels"
    assert conditioning_for(nn.Linear(1, 1), None, torch.zeros(3, 2)).kind == "paired"
    with pytest.raises(ConfigError, match="needs a dataset with labels"):
        conditioning_for(G(), None, None)
    with pytest.raises(ConfigError, match="labels or on paired conditions, not both"):
        conditioning_for(G(), torch.zeros(3), torch.zeros(3, 2))
