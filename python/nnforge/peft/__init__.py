"""``nnforge.peft``: fine-tuning a frozen model through a few new parameters.

- LoRA (``apply_lora``, ``LoRALinear``, ``merge_lora``/``unmerge_lora``,
  ``lora_state_dict``): low-rank updates of chosen Linear layers;
- adapters (``apply_adapters``, ``Adapter``): bottleneck modules after the
  attention and feed-forward sublayers;
- prefix-tuning (``apply_prefix_tuning``): learned keys and values per
  attention layer;
- prompt-tuning (``PromptTuning``): learned input embeddings ahead of the text;
- ``count_parameters``, ``print_trainable_parameters``, ``trainable_state_dict``.

Full fine-tuning needs nothing here: train all of ``model.parameters()``.

>>> import nnforge as nf
>>> gpt = nf.models.GPT(65, block_size=32, n_layer=2, n_head=2, d_model=32)
>>> _ = nf.peft.apply_lora(gpt, target_modules=("qkv",), r=4)
>>> nf.peft.trainable_summary(gpt)
'trainable params: 1,024 || all params: 29,600 || trainable%: 3.4595'
"""
from .adapters import Adapter, AdapterWrapper, apply_adapters
from .lora import LoRALinear, apply_lora, lora_state_dict, merge_lora, unmerge_lora
from .prefix import Prefix, apply_prefix_tuning, remove_prefix_tuning
from .prompt import PromptTuning
from .utils import (count_parameters, freeze, match_modules, print_trainable_parameters,
                    trainable_state_dict, trainable_summary)

__all__ = ["LoRALinear", "apply_lora", "merge_lora", "unmerge_lora", "lora_state_dict",
           "Adapter", "AdapterWrapper", "apply_adapters",
           "Prefix", "apply_prefix_tuning", "remove_prefix_tuning", "PromptTuning",
           "count_parameters", "print_trainable_parameters", "trainable_summary",
           "trainable_state_dict", "freeze", "match_modules"]
