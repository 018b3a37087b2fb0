// Encodes ERC-20 call data with ethers.js 6 (Interface.encodeFunctionData)
// for the Go tests of chains/ethereum and policy: node erc20.mjs prints one
// JSON array of {name, method, from, to, amount, data}.
import { Interface, MaxUint256, getAddress, parseUnits } from "ethers";

const erc20 = new Interface([
	"function transfer(address to, uint256 amount) returns (bool)",
	"function transferFrom(address from, address to, uint256 amount) returns (bool)",
	"function approve(address spender, uint256 amount) returns (bool)",
	"function increaseAllowance(address spender, uint256 addedValue) returns (bool)",
	"function balanceOf(address owner) view returns (uint256)",
	"function permit(address owner, address spender, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s)",
]);

const alice = getAddress("0x000000000000000000000000000000000000dead");
const bob = "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826";
const router = "0x7a250d5630B4cF539739dF2C5dAcb4c659F2488D";

const calls = [
	["transfer_10000_usdc", "transfer", [bob, parseUnits("10000", 6)]],
	["transfer_one_unit_over", "transfer", [bob, parseUnits("10000", 6) + 1n]],
	["transfer_zero", "transfer", [alice, 0n]],
	["transfer_max_uint256", "transfer", [bob, MaxUint256]],
	["transfer_from", "transferFrom", [alice, bob, 123456789n]],
	["approve_capped", "approve", [router, parseUnits("500", 6)]],
	["approve_unlimited", "approve", [router, MaxUint256]],
	["approve_revoke", "approve", [router, 0n]],
	["increase_allowance", "increaseAllowance", [router, 1n]],
	["balance_of", "balanceOf", [alice]],
	["permit", "permit", [alice, router, MaxUint256, 1700000000n, 27, "0x" + "11".repeat(32), "0x" + "22".repeat(32)]],
];

const out = calls.map(([name, method, args]) => {
	const v = { name, method, data: erc20.encodeFunctionData(method, args) };
	if (method === "transferFrom") {
		[v.from, v.to, v.amount] = [args[0], args[1], args[2].toString()];
	} else if (method === "transfer" || method === "approve") {
		[v.to, v.amount] = [args[0], args[1].toString()];
	}
	return v;
});
process.stdout.write(JSON.stringify(out) + "\n");
