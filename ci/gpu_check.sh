#!/usr/bin/env bash
# The GPU checks, as one script for a lent H100/H200 (the device tool runs it in the repo root):
#   1. kernel parity: every attention backend vs the float32 reference, fp32 and bf16
#   2. MFU / throughput of the decoder (ours vs transformers' Llama) and the encoder (ours vs BertForMaskedLM)
#   3. one tiny multi-step training run per model stack (decoder, encoder, vision, diffusion)
#   4. measured peak memory of the largest decoder preset at its real width vs the preflight's estimate
#   5. torch.compile of the SD2 UNet's blocks (static shapes, channels_last, fp16) beside eager
# Uses the machine's own python3 (it holds CUDA PyTorch); nothing is installed. Each part runs even
# if an earlier one failed; the exit status is non-zero if any failed. Output also goes to $OUT/gpu_check.log.
#
#   device run: bash ci/gpu_check.sh            (parts capped at 590 s in all; use timeout_s 600 and rerun once if needed)
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PY=${PYTHON:-python3}
LOG=${OUT:-/tmp}/gpu_check.log
status=0
section() { echo; echo "=== $* ==="; }
exec > >(tee "$LOG") 2>&1
section "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv || true
$PY -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__); print(torch.cuda.get_device_name(0))"
$PY -c "import flash_attn; print('flash-attn', flash_attn.__version__)" 2>/dev/null || echo "flash-attn: not installed (flash path untested here)"

section "1. attention parity vs reference"
timeout 100 $PY ci/gpu_parity.py || status=1

section "2a. decoder: ours vs LlamaForCausalLM (bf16 autocast), GPT-2-small-like shape"
timeout 90 $PY benchmarks/decoder_vs_llama.py --device cuda --layers 12 --d-model 768 --heads 12 --seq 1024 \
      --batch 8 --vocab 50304 --steps 10 || status=1

section "2b. encoder: ours (unpadded) vs BertForMaskedLM at 0/25/50% padding, BERT-base shape"
timeout 90 $PY benchmarks/bert_unpadding.py --device cuda --layers 12 --hidden 768 --heads 12 --seq 128 \
      --batch 128 || status=1

section "3. tiny multi-step runs per stack (MFU from the trainer)"
timeout 130 $PY ci/gpu_steps.py --steps 30 || status=1
section "4. the largest decoder preset (MPT-7B, domain_upsampling full) at real width, 4 layers: peak memory vs preflight"
timeout 110 $PY ci/gpu_memory_check.py --layers 4 --steps 3 || status=1
section "5. torch.compile of the SD2 UNet's blocks as the full preset trains them, beside eager"
timeout 70 $PY ci/compile_check.py --device cuda --steps 3 || status=1
echo; echo "gpu_check: $([ $status -eq 0 ] && echo all parts passed || echo SOME PARTS FAILED)"
exit $status
