/* proto: names for the protocol's numbers, for log lines. */
#include "proto.h"

const char *zk_err_name(int err)
{
	switch (err) {
	case ZOK: return "OK";
	case ZSYSTEMERROR: return "SYSTEMERROR";
	case ZRUNTIMEINCONSISTENCY: return "RUNTIMEINCONSISTENCY";
	case ZMARSHALLINGERROR: return "MARSHALLINGERROR";
	case ZUNIMPLEMENTED: return "UNIMPLEMENTED";
	case ZBADARGUMENTS: return "BADARGUMENTS";
	case ZNONODE: return "NONODE";
	case ZNOAUTH: return "NOAUTH";
	case ZBADVERSION: return "BADVERSION";
	case ZNOCHILDRENFOREPHEMERALS: return "NOCHILDRENFOREPHEMERALS";
	case ZNODEEXISTS: return "NODEEXISTS";
	case ZNOTEMPTY: return "NOTEMPTY";
	case ZSESSIONEXPIRED: return "SESSIONEXPIRED";
	case ZINVALIDACL: return "INVALIDACL";
	case ZAUTHFAILED: return "AUTHFAILED";
	case ZNOWATCHER: return "NOWATCHER";
	}
	return "(other)";
}

const char *zk_op_name(int op)
{
	switch (op) {
	case ZK_OP_NOTIFICATION: return "notification";
	case ZK_OP_CREATE: return "create";
	case ZK_OP_DELETE: return "delete";
	case ZK_OP_EXISTS: return "exists";
	case ZK_OP_GET_DATA: return "getData";
	case ZK_OP_SET_DATA: return "setData";
	case ZK_OP_GET_ACL: return "getACL";
	case ZK_OP_SET_ACL: return "setACL";
	case ZK_OP_GET_CHILDREN: return "getChildren";
	case ZK_OP_SYNC: return "sync";
	case ZK_OP_PING: return "ping";
	case ZK_OP_GET_CHILDREN2: return "getChildren2";
	case ZK_OP_CHECK: return "check";
	case ZK_OP_MULTI: return "multi";
	case ZK_OP_CREATE2: return "create2";
	case ZK_OP_RECONFIG: return "reconfig";
	case ZK_OP_CHECK_WATCHES: return "checkWatches";
	case ZK_OP_REMOVE_WATCHES: return "removeWatches";
	case ZK_OP_CREATE_CONTAINER: return "createContainer";
	case ZK_OP_DELETE_CONTAINER: return "deleteContainer";
	case ZK_OP_CREATE_TTL: return "createTTL";
	case ZK_OP_MULTI_READ: return "multiRead";
	case ZK_OP_AUTH: return "auth";
	case ZK_OP_SET_WATCHES: return "setWatches";
	case ZK_OP_SASL: return "sasl";
	case ZK_OP_GET_EPHEMERALS: return "getEphemerals";
	case ZK_OP_GET_ALL_CHILDREN_NUMBER: return "getAllChildrenNumber";
	case ZK_OP_SET_WATCHES2: return "setWatches2";
	case ZK_OP_ADD_WATCH: return "addWatch";
	case ZK_OP_WHO_AM_I: return "whoAmI";
	case ZK_OP_CREATE_SESSION: return "createSession";
	case ZK_OP_CLOSE_SESSION: return "closeSession";
	}
	return "unknown";
}
