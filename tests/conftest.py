"""Suite-wide settings: one torch thread (CI has 2 cores and tiny models oversubscribe badly)."""
import os
import sys

import torch

os.environ.setdefault("DEAPNN_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
