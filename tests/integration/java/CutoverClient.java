// A ZooKeeper Java client that lives through a cut-over from ZooKeeper to
// corral (test_zookeeper_cutover.py): it connects to argv[0], creates the
// ephemeral argv[1], sets a data watch on /watched and prints
// "READY <session id>"; when the watch fires (after the cut-over) it prints
// "FIRED <session id now> <ephemeralOwner of its ephemeral, or none>".
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.Stat;

public class CutoverClient {
    public static void main(String[] args) throws Exception {
        CountDownLatch connected = new CountDownLatch(1);
        CountDownLatch fired = new CountDownLatch(1);
        ZooKeeper zk = new ZooKeeper(args[0], 30000, e -> {
            if (e.getState() == Watcher.Event.KeeperState.SyncConnected)
                connected.countDown();
        });
        connected.await();
        long sid = zk.getSessionId();
        zk.create(args[1], new byte[0], ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL);
        zk.getData("/watched", e -> {
            if (e.getType() == Watcher.Event.EventType.NodeDataChanged)
                fired.countDown();
        }, null);
        System.out.println("READY " + sid);
        System.out.flush();
        if (!fired.await(180, TimeUnit.SECONDS)) {
            System.out.println("NO EVENT");
            System.exit(1);
        }
        Stat st = zk.exists(args[1], false);
        System.out.println("FIRED " + zk.getSessionId() + " "
                + (st == null ? "none" : Long.toString(st.getEphemeralOwner())));
        System.out.flush();
        zk.close();
    }
}
