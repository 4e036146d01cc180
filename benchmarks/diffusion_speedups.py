"""Training throughput of each CommonCanvas speedup on its own and all together (a command-line entry
point; the benchmark is `papers.commoncanvas.speedup_benchmark`, which the speedups notebook calls).

    OMP_NUM_THREADS=1 python benchmarks/diffusion_speedups.py                       # tiny, CPU
    python benchmarks/diffusion_speedups.py --preset sd2 --compile --out sd2.json   # SD2 shapes, CUDA bf16
"""
from papers.commoncanvas.speedup_benchmark import main

if __name__ == "__main__":
    main()
