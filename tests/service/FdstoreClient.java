// The Java client of test_fdstore.py, run in the container's network
// namespace: connects to 127.0.0.1:2181 or argv[0] (session timeout 30 s), creates the
// ephemeral /java-eph, a one-shot data watch on /watched and a persistent
// watch on /persistent, and prints "READY <session id>". Then one command
// per line on stdin:
//   load   pipelines asynchronous creates under /java-load until `stop`
//   stop   prints "LOADED <sent> <answered> <in order> <failed> <missing>"
//          (missing: acknowledged creates not there now)
//   check  waits for the two events (the test changes both nodes first) and
//          prints "CHECK <data fired> <persistent fired> <session id> <states>"
//          where states are the connection states its Watcher saw after the
//          first SyncConnected ("none" when none)
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.zookeeper.AddWatchMode;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;

public class FdstoreClient {
    static final List<String> states = Collections.synchronizedList(new ArrayList<>());
    static final List<Integer> answered = Collections.synchronizedList(new ArrayList<>());
    static final AtomicInteger failed = new AtomicInteger();

    public static void main(String[] args) throws Exception {
        CountDownLatch connected = new CountDownLatch(1);
        String hosts = args.length > 0 ? args[0] : "127.0.0.1:2181";
        ZooKeeper zk = new ZooKeeper(hosts, 30000, e -> {
            if (e.getType() != Watcher.Event.EventType.None)
                return;
            if (connected.getCount() > 0 && e.getState() == Watcher.Event.KeeperState.SyncConnected)
                connected.countDown();
            else
                states.add(e.getState().toString());
        });
        connected.await();
        zk.create("/java-eph", new byte[0], ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
        zk.create("/java-load", new byte[0], ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        CountDownLatch dataFired = new CountDownLatch(1), persistentFired = new CountDownLatch(1);
        zk.getData("/watched", e -> {
            if (e.getType() == Watcher.Event.EventType.NodeDataChanged)
                dataFired.countDown();
        }, null);
        zk.addWatch("/persistent", e -> {
            if (e.getType() == Watcher.Event.EventType.NodeDataChanged)
                persistentFired.countDown();
        }, AddWatchMode.PERSISTENT);
        System.out.println("READY " + zk.getSessionId());
        System.out.flush();

        AtomicBoolean loading = new AtomicBoolean();
        AtomicInteger sent = new AtomicInteger();
        Thread loader = null;
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        for (String line; (line = in.readLine()) != null; ) {
            if (line.equals("load")) {
                loading.set(true);
                loader = new Thread(() -> {
                    while (loading.get()) {
                        int i = sent.getAndIncrement();
                        zk.create("/java-load/n" + i, new byte[100], ZooDefs.Ids.OPEN_ACL_UNSAFE,
                                  CreateMode.PERSISTENT, (rc, path, ctx, name) -> {
                                      if (rc != 0)
                                          failed.incrementAndGet();
                                      answered.add((Integer) ctx);
                                  }, i);
                        try {
                            Thread.sleep(sent.get() - answered.size() > 200 ? 10 : 2);
                        } catch (InterruptedException e) {
                            return;
                        }
                    }
                });
                loader.start();
                System.out.println("LOADING");
            } else if (line.equals("stop")) {
                loading.set(false);
                loader.join();
                long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
                while (answered.size() < sent.get() && System.nanoTime() < end)
                    Thread.sleep(10);
                boolean inOrder = true;
                int missing = 0;
                synchronized (answered) {
                    for (int i = 0; i < answered.size(); i++)
                        inOrder &= answered.get(i) == i;
                }
                for (int i = 0; i < sent.get(); i++)
                    try {
                        if (zk.exists("/java-load/n" + i, false) == null)
                            missing++;
                    } catch (KeeperException e) {
                        missing++;
                    }
                System.out.println("LOADED " + sent.get() + " " + answered.size() + " " + inOrder
                                   + " " + failed.get() + " " + missing);
            } else if (line.equals("check")) {
                boolean d = dataFired.await(30, TimeUnit.SECONDS);
                boolean p = persistentFired.await(30, TimeUnit.SECONDS);
                System.out.println("CHECK " + d + " " + p + " " + zk.getSessionId() + " "
                                   + (states.isEmpty() ? "none" : String.join(",", states)));
            }
            System.out.flush();
        }
        zk.close();
    }
}
