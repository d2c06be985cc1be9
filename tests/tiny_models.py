"""Tiny, randomly initialised versions of the paper's prior models, built offline in the tests: the real
loading/inference code paths run end to end on them (weights cannot be downloaded here)."""
import torch

WORDS = ['[UNK]', '<pad>', '</s>', '<s>', '<image>', 'a', 'face', 'of', 'woman', 'man', 'smiling', 'young', 'the',
         'with', 'hair', 'photo']


def word_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast
    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token='[UNK]'))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.post_processor = processors.TemplateProcessing(single='<s> $A </s>', special_tokens=[('<s>', 3), ('</s>', 2)])
    return PreTrainedTokenizerFast(tokenizer_object=tk, unk_token='[UNK]', pad_token='<pad>', eos_token='</s>',
                                   bos_token='<s>')


def tiny_blip2():
    """transformers 5: BLIP-2 needs `image_token_index` and the image tokens in input_ids (the processor
    expands one `<image>` into num_query_tokens of them)."""
    from transformers import Blip2Config, Blip2ForConditionalGeneration, Blip2Processor, BlipImageProcessor
    tok = word_tokenizer()
    proc = Blip2Processor(image_processor=BlipImageProcessor(size={'height': 32, 'width': 32}), tokenizer=tok,
                          num_query_tokens=4)
    image_token_index = tok.convert_tokens_to_ids('<image>')
    cfg = Blip2Config(
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=32, patch_size=16),
        qformer_config=dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                            encoder_hidden_size=32, vocab_size=len(WORDS)),
        text_config=dict(model_type='opt', vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, ffn_dim=64,
                         num_attention_heads=2, word_embed_proj_dim=32, max_position_embeddings=64, pad_token_id=1,
                         bos_token_id=3, eos_token_id=2),
        num_query_tokens=4, image_token_index=image_token_index)
    torch.manual_seed(0)
    return Blip2ForConditionalGeneration(cfg).eval(), proc


def tiny_clip_hf():
    from transformers import CLIPTextConfig, CLIPTextModel
    cfg = CLIPTextConfig(vocab_size=len(WORDS), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, max_position_embeddings=16, pad_token_id=1, bos_token_id=3,
                         eos_token_id=2)
    torch.manual_seed(0)
    return CLIPTextModel(cfg).eval(), word_tokenizer()


def tiny_open_clip():
    import open_clip
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg
    torch.manual_seed(0)
    model = CLIP(embed_dim=24,
                 vision_cfg=CLIPVisionCfg(layers=1, width=32, patch_size=16, image_size=32, head_width=16),
                 text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=32, heads=2, layers=1))
    return model.eval(), open_clip.get_tokenizer('ViT-B-32')  # the BPE vocabulary ships inside open_clip


def tiny_depth_anything():
    """transformers 5: the Dinov2 backbone needs reshape_hidden_states=False for Depth Anything."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, DPTImageProcessor
    backbone = dict(model_type='dinov2', hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                    intermediate_size=64,
                    image_size=28, patch_size=14, out_features=['stage1', 'stage2', 'stage3', 'stage4'],
                    reshape_hidden_states=False)
    cfg = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=32, patch_size=14,
                              neck_hidden_sizes=[8, 16, 16, 16], fusion_hidden_size=16, head_hidden_size=8)
    torch.manual_seed(0)
    proc = DPTImageProcessor(size={'height': 28, 'width': 28}, keep_aspect_ratio=False, ensure_multiple_of=14)
    return DepthAnythingForDepthEstimation(cfg).eval(), proc


def tiny_sam():
    from functools import partial

    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer
    dim, img, patch = 32, 64, 16
    torch.manual_seed(0)
    sam = Sam(image_encoder=ImageEncoderViT(img_size=img, patch_size=patch, embed_dim=32, depth=1, num_heads=2,
                                            out_chans=dim, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                                            use_rel_pos=False, window_size=0, global_attn_indexes=()),
              prompt_encoder=PromptEncoder(embed_dim=dim, image_embedding_size=(img // patch, img // patch),
                                           input_image_size=(img, img), mask_in_chans=4),
              mask_decoder=MaskDecoder(num_multimask_outputs=3, transformer_dim=dim,
                                       transformer=TwoWayTransformer(depth=1, embedding_dim=dim, mlp_dim=64,
                                                                     num_heads=2),
                                       iou_head_depth=1, iou_head_hidden_dim=16))
    return sam.eval()
