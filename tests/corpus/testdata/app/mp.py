"""Multiprocessing in a container: a Manager (a server process reached over
an AF_UNIX socket) shared by the workers of a Pool (processes fed through
pipes and semaphores in /dev/shm). Counts its runs in $DATA/runs."""
import multiprocessing as mp
import os


def square(x):
    return x * x


def record(shared, lock, i):
    with lock:
        shared[i] = os.getpid()


if __name__ == "__main__":
    with mp.Manager() as manager:
        shared, lock = manager.dict(), manager.Lock()
        with mp.Pool(4) as pool:
            total = sum(pool.map(square, range(1000)))
            pool.starmap(record, [(shared, lock, i) for i in range(16)])
        workers = len(set(shared.values()))
    path = os.path.join(os.environ.get("DATA", "/data"), "runs")
    runs = 1
    if os.path.exists(path):
        with open(path) as f:
            runs = int(f.read()) + 1
    with open(path, "w") as f:
        f.write(str(runs))
        f.flush()
        os.fsync(f.fileno())
    print(f"sum={total} workers={workers} runs={runs}")
