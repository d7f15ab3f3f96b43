// Implements the flat layout of every LoRA factor (A [r,in] then B [out,r] per adapted projection, layer-major)
// and PEFT's tensor names; does not own memory. Parameters, gradients and AdamW moments all share this layout,
// so an all-reduce or an optimizer step is one loop over one buffer.
import KnowTuneTensor

public struct LoRAModuleSlot: Equatable {
    public let layer: Int
    public let kind: ProjectionKind
    public let inFeatures: Int
    public let outFeatures: Int
    /// Offset of A [r, in] in the flat buffer.
    public let aOffset: Int
    /// Offset of B [out, r] in the flat buffer.
    public let bOffset: Int
}

public struct LoRALayout: Equatable {
    public let configuration: LoRAConfiguration
    public let slots: [LoRAModuleSlot]
    public let totalCount: Int
    /// slotIndex[layer][kind.rawValue], or nil when that projection has no adapter.
    private let slotIndex: [[Int?]]

    public init(model: LlamaConfiguration, lora: LoRAConfiguration) {
        configuration = lora
        var slots: [LoRAModuleSlot] = []
        var index: [[Int?]] = []
        var cursor = 0
        let r = lora.rank
        for layer in 0..<model.layerCount {
            var row = [Int?](repeating: nil, count: ProjectionKind.allCases.count)
            for kind in lora.targets {
                let (outFeatures, inFeatures) = kind.shape(model)
                let slot = LoRAModuleSlot(layer: layer, kind: kind, inFeatures: inFeatures, outFeatures: outFeatures,
                                          aOffset: cursor, bOffset: cursor + r * inFeatures)
                cursor += r * inFeatures + outFeatures * r
                row[kind.rawValue] = slots.count
                slots.append(slot)
            }
            index.append(row)
        }
        self.slots = slots
        self.slotIndex = index
        totalCount = cursor
    }

    public func slot(layer: Int, kind: ProjectionKind) -> LoRAModuleSlot? {
        slotIndex[layer][kind.rawValue].map { slots[$0] }
    }

    /// PEFT's saved key (`base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight`), the one place names are built.
    public static func peftName(layer: Int, kind: ProjectionKind, factor: String) -> String {
        "base_model.model.model.layers.\(layer).\(kind.parentModule).\(kind.moduleName).lora_\(factor).weight"
    }

    /// Every tensor: PEFT name, shape, offset, in layout order.
    public var namedTensors: [(name: String, shape: [Int], offset: Int)] {
        slots.flatMap { slot in
            [(Self.peftName(layer: slot.layer, kind: slot.kind, factor: "A"), [configuration.rank, slot.inFeatures], slot.aOffset),
             (Self.peftName(layer: slot.layer, kind: slot.kind, factor: "B"), [slot.outFeatures, configuration.rank], slot.bOffset)]
        }
    }
}
