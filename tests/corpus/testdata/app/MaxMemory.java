// Prints what the JVM believes it may use: under a memory limit it should
// size its heap (a quarter of the limit by default) from the container's
// cgroup, not from the host's memory.
public class MaxMemory {
    public static void main(String[] args) {
        Runtime rt = Runtime.getRuntime();
        System.out.println("maxMemory=" + rt.maxMemory());
        System.out.println("availableProcessors=" + rt.availableProcessors());
    }
}
