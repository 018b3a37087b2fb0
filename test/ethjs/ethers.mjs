// ethers.js 6 JsonRpcSigner against a running keyward. Run by the Go tests in
// chains/ethereum/rpc:
//
//   node ethers.mjs sign <url> <address>
//       signMessage + verifyMessage, signTypedData + verifyTypedData,
//       signTransaction (EIP-1559 and legacy) whose Transaction.from is the address
//   node ethers.mjs send <url> <address> <allowedTo> <forbiddenTo>
//       sendTransaction through keyward's proxy, waits for the receipt, then
//       tries a transfer the policy forbids
//
// Prints one JSON object on stdout; exits 1 with a message on any mismatch.
import { JsonRpcProvider, Transaction, verifyMessage, verifyTypedData, parseEther, parseUnits, getAddress } from "ethers";

function check(cond, what) {
	if (!cond) {
		console.error("FAIL: " + what);
		process.exit(1);
	}
}

async function sign(url, address) {
	const provider = new JsonRpcProvider(url, undefined, { pollingInterval: 100 });
	const signer = await provider.getSigner(address);
	const out = {};

	const message = "hello from ethers through keyward";
	out.message = await signer.signMessage(message);
	check(verifyMessage(message, out.message) === address, "verifyMessage recovers " + verifyMessage(message, out.message));

	const domain = { name: "Ether Mail", version: "1", chainId: 1337, verifyingContract: "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC" };
	const types = {
		Person: [{ name: "name", type: "string" }, { name: "wallet", type: "address" }],
		Mail: [{ name: "from", type: "Person" }, { name: "to", type: "Person" }, { name: "contents", type: "string" }, { name: "amount", type: "uint256" }],
	};
	const value = {
		from: { name: "Cow", wallet: "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826" },
		to: { name: "Bob", wallet: "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB" },
		contents: "Hello, Bob!",
		amount: 2n ** 200n + 1n, // beyond float64: must stay exact
	};
	out.typed = await signer.signTypedData(domain, types, value);
	check(verifyTypedData(domain, types, value, out.typed) === address, "verifyTypedData");

	const to = "0x000000000000000000000000000000000000dEaD";
	out.raw1559 = await signer.signTransaction({
		to, value: parseEther("0.01"), nonce: 7, gasLimit: 21000n, chainId: 1337n, type: 2,
		maxFeePerGas: parseUnits("30", "gwei"), maxPriorityFeePerGas: parseUnits("1", "gwei"), data: "0x1234",
	});
	const tx = Transaction.from(out.raw1559);
	check(tx.from === address, "1559 transaction from " + tx.from);
	check(tx.type === 2 && tx.nonce === 7 && tx.to === to && tx.data === "0x1234", "1559 transaction fields");

	out.rawLegacy = await signer.signTransaction({ to, value: 1n, nonce: 8, gasLimit: 21000n, gasPrice: parseUnits("2", "gwei"), chainId: 1337n, type: 0 });
	const legacy = Transaction.from(out.rawLegacy);
	check(legacy.from === address && legacy.type === 0 && legacy.chainId === 1337n, "legacy transaction");
	return out;
}

async function send(url, address, allowedTo, forbiddenTo) {
	const provider = new JsonRpcProvider(url, undefined, { pollingInterval: 100 });
	const signer = await provider.getSigner(address);
	const out = {};
	const resp = await signer.sendTransaction({ to: allowedTo, value: parseEther("0.5") });
	const receipt = await resp.wait(1, 60000);
	check(receipt !== null && receipt.status === 1, "receipt status");
	check(getAddress(receipt.from) === address, "receipt from " + receipt.from);
	out.hash = receipt.hash;
	out.from = receipt.from;
	out.block = receipt.blockNumber;
	out.balance = (await provider.getBalance(allowedTo)).toString();
	try {
		await signer.sendTransaction({ to: forbiddenTo, value: 1n });
		check(false, "the forbidden transfer was accepted");
	} catch (e) {
		out.refusedCode = e?.error?.code ?? null;
		out.refusedMessage = e?.error?.message ?? String(e);
	}
	return out;
}

const [mode, ...args] = process.argv.slice(2);
const run = { sign, send }[mode];
check(run !== undefined, "mode must be sign or send");
try {
	console.log(JSON.stringify(await run(...args)));
	process.exit(0);
} catch (e) {
	console.error("FAIL: " + (e?.stack ?? e));
	process.exit(1);
}
