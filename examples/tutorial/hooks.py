"""Example 3's ``@cell_model`` hook: each cell's ``d`` multiplied by its ``jitter`` property.

The tutorial names its directive after the model as NEST registers it; with the registry, the node types
may say ``nestml:custom_izh_neuron`` (or ``...@2``) and this hook still builds them. Run it with

    nestml-registry run work/example3/config.json --hooks hooks.py
"""

from __future__ import annotations

import nest
import numpy as np
from bmtk.simulator.pointnet import cell_model


@cell_model(directive="nestml:custom_izh_neuron_nestml", model_type="point_neuron")
def izh_with_jitter(cells, template_name, dynamics_params):
    nodes = nest.Create(template_name, cells.n_nodes, dynamics_params)
    d = np.atleast_1d(np.asarray(nodes.get("d"), dtype=float)) * np.asarray(cells["jitter"], dtype=float)
    nodes.set(d=[float(x) for x in d])
    return nodes
