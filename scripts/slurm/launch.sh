#!/usr/bin/env bash
# Multi-node training on a Slurm cluster: one `accelerate launch` per node, started by srun.
# Use when one machine's GPUs are not enough (README, "Scaling"). Every node runs this script's
# srun step; Accelerate then starts one process per GPU on it and they rendezvous at the first
# node of the allocation.
#
#   sbatch --nodes 2 scripts/slurm/launch.sh recipes/sft.py --config recipes/<recipe>/sft.yaml --bf16 true
#   ACCELERATE_CONFIG=accelerate_configs/deepspeed_zero3.yaml sbatch --nodes 4 scripts/slurm/launch.sh \
#       recipes/reward.py --config recipes/<recipe>/reward.yaml --bf16 true
#
# Environment: ACCELERATE_CONFIG (default accelerate_configs/multi_node.yaml; fsdp.yaml and
# deepspeed_zero{2,3}.yaml work too, the per-node values below override theirs), GPUS_PER_NODE
# (default: SLURM_GPUS_ON_NODE, else 8), MASTER_PORT (default 29500). Output folders must be on a
# file system every node sees: the main process saves, the others wait for it.
#SBATCH --job-name=instructgpt
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gres=gpu:8
#SBATCH --cpus-per-task=32
#SBATCH --exclusive
#SBATCH --output=logs/%x-%j.out

set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: sbatch [--nodes N] $0 recipes/<stage>.py --config <yaml> [overrides...]" >&2
    exit 2
fi

ACCELERATE_CONFIG=${ACCELERATE_CONFIG:-accelerate_configs/multi_node.yaml}
GPUS_PER_NODE=${GPUS_PER_NODE:-${SLURM_GPUS_ON_NODE:-8}}
NNODES=${SLURM_NNODES:?run under sbatch/salloc (SLURM_NNODES is not set)}
MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
MASTER_PORT=${MASTER_PORT:-29500}
NUM_PROCESSES=$((NNODES * GPUS_PER_NODE))

export TOKENIZERS_PARALLELISM=false
export TRL_EXPERIMENTAL_SILENCE=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-8}
export NCCL_ASYNC_ERROR_HANDLING=1

echo "nodes=$NNODES gpus/node=$GPUS_PER_NODE processes=$NUM_PROCESSES master=$MASTER_ADDR:$MASTER_PORT" \
     "config=$ACCELERATE_CONFIG script=$*"

# Single quotes: SLURM_PROCID is expanded on each node (its machine rank), not here.
# `--rdzv_backend c10d` lets the nodes start in any order; `--max_restarts 0` fails the job fast.
srun --nodes "$NNODES" --ntasks-per-node 1 bash -c '
    exec accelerate launch \
        --config_file "$0" \
        --num_machines "$1" \
        --num_processes "$2" \
        --machine_rank "$SLURM_PROCID" \
        --main_process_ip "$3" \
        --main_process_port "$4" \
        --rdzv_backend c10d \
        --max_restarts 0 \
        --role "$(hostname -s):" \
        --tee 3 \
        "${@:5}"
' "$ACCELERATE_CONFIG" "$NNODES" "$NUM_PROCESSES" "$MASTER_ADDR" "$MASTER_PORT" "$@"
